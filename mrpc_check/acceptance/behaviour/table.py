"""The report: the behaviour tests as a table beside the yardsticks, and the lines that name each failure."""

from __future__ import annotations

from typing import Iterable

from mrpc_check.acceptance.behaviour.thresholds import parse_threshold


SHOWN = 3  # failing cases printed under the table per failing test (the JSON keeps EXAMPLES)


def _limit_text(r: dict) -> str:
    """"15%", or a relative threshold with the limit it came to: "58.3% = unedited-0.2"."""
    if r["threshold"] is None and r.get("threshold_rule") is None:
        return "none"
    rule = r.get("threshold_rule") or f"{r['threshold']:g}"
    if parse_threshold(rule).rate is None:  # relative: the limit it came to on these cases (none if not run)
        return rule if r["threshold"] is None else f"{100 * r['threshold']:.1f}% = {rule}"
    return f"{100 * r['threshold']:.0f}%"


YARD_COLUMNS = (("overlap", "overlap"), ("first_sentence", "first"), ("majority", "majority"), ("unedited", "unedited"))


def format_table(result: dict) -> str:
    """The predictor on the original pairs, the tests as a table with the yardsticks' failure rates
    beside the predictor's, one line of counts, then the clearest failures of each failing test."""
    lines = []
    c = result.get("context")
    if c:
        b = c["baseline"]
        lines.append(f"predictor on the {c['pairs']} original pairs: accuracy {c['accuracy']:.4f}  F1 {c['f1']:.4f}  "
                     f"MCC {c['mcc']:.4f}  (majority baseline: accuracy {b['accuracy']:.4f}, F1 {b['f1']:.4f})")
        if c["degenerate"]:
            lines.append(c["degenerate"])
    width = max([9] + [len(_limit_text(r)) for r in result["tests"]])
    lines.append(f"{'test':<12} {'type':<4} {'cases':>6} {'failures':>8} {'rate':>7}  {'threshold':>{width}}  "
                 + " ".join(f"{title:>8}" for _, title in YARD_COLUMNS) + "  verdict")
    for r in result["tests"]:
        rate = "-" if r["failure_rate"] is None else f"{100 * r['failure_rate']:.1f}%"
        yard = r.get("yardstick") or {}
        rates = [f"{100 * yard[k]:.1f}%" if k in yard else "-" for k, _ in YARD_COLUMNS]
        verdict = {"info": "REPORTED (no threshold)", "skip": f"SKIP ({r['reason']})"}.get(r["status"], r["status"].upper())
        if r.get("vacuous"):
            verdict += f" ({r['vacuous']})"
        lines.append(f"{r['name']:<12} {r['type']:<4} {r['cases']:>6} {r['failures']:>8} {rate:>7}  {_limit_text(r):>{width}}  "
                     + " ".join(f"{x:>8}" for x in rates) + f"  {verdict}")
    counts = result["counts"]
    lines.append(f"{counts['pass']} passed, {counts['fail']} failed, {counts['info']} reported, {counts['skip']} skipped "
                 f"({result['pairs']} pairs; DIR margin {result['margin']}; overlap, first, majority: the calibration "
                 "classifiers' failure rates on the same cases; unedited: the predictor's own on the cases' original pairs)")
    for r in result["tests"]:
        if r["status"] == "fail" and r["examples"]:
            lines.append(f"{r['name']}: the clearest of {r['failures']} failures")
            for e in r["examples"][:SHOWN]:
                before = f"P(equivalent) {e['p_before']:.2f} -> " if e["p_before"] is not None else "P(equivalent) "
                lines.append(f"  {before}{e['p_after']:.2f}  {e['edit']}: {e['after'][0]!r} / {e['after'][1]!r}")
    return "\n".join(lines)


def failure_lines(result: dict) -> Iterable[str]:
    """One line per failing test, with its worst example."""
    for r in result["tests"]:
        if r["status"] == "fail":
            example = r["examples"][0] if r["examples"] else None
            shown = f"; e.g. {example['after']} P={example['p_after']:.2f}" if example else ""
            yield (f"behaviour {r['name']}: {r['failures']}/{r['cases']} cases fail ({100 * r['failure_rate']:.1f}% > "
                   f"threshold {_limit_text(r)}){shown}")


