"""Run the battery on one loop: every registered check, one verdict each, as a table or JSON.

The table lists root causes first (each with its bug and fix), then warnings, then the
failures that follow from a root cause (no fix of their own), then the rest; its last line
counts the four statuses as they are.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Iterable, Optional

# Importing the families registers their checks, in the order the table lists them.
from mrpc_check.checks import (inputs, padding, coverage, grouping, schedule, clipping, optimizer, extras,  # noqa: F401
                               gradients, evaluation, seed, labels, resume, precision, multiprocess)
from mrpc_check.checks.harness import Arch, Battery
from mrpc_check.checks.verdict import REGISTRY, STATUSES, Verdict, guarded, judge


class Verdicts(list):
    """The verdicts of one battery, in order, with the effective recipe of its base run (``.effective``)."""

    effective = None


def check_names(tiers: Iterable[str] = ("fast", "gpu")) -> list[str]:
    tiers = set(tiers)
    return [name for name, c in REGISTRY.items() if c.tier in tiers]


def run_battery(adapter, arch: Optional[Arch] = None, checks: Optional[Iterable[str]] = None) -> Verdicts:
    """Run ``checks`` (all single-process ones by default) on ``adapter``; one :class:`Verdict` each.

    The checks a requested one rests on are judged too (from the same shared runs): a failure
    they explain is reported as their consequence, and a root cause outside ``checks`` joins the list.
    The result is a list with ``.effective``: what the loop did on the base run
    (:class:`~mrpc_check.checks.effective.EffectiveRecipe`), when a single-process check ran it.

    Raises:
        AdapterError: the adapter returned something that is not predictions.
        KeyError: an unknown check name.
    """
    names = list(checks) if checks else check_names()
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        from mrpc_check.checks.contract import did_you_mean

        raise KeyError(f"unknown check(s) {', '.join(unknown)}{did_you_mean(unknown[0], REGISTRY)}; known: {', '.join(REGISTRY)}")
    with _bench_conditions():
        return _run(adapter, arch, names)


def _run(adapter, arch, names) -> Verdicts:
    battery = Battery(adapter, arch)

    def timed(name: str) -> Verdict:
        started = time.perf_counter()
        verdict = guarded(battery, name)  # a check that raises: an `error` verdict, one line, never a root cause
        verdict.figure += f" [{time.perf_counter() - started:.1f} s]"
        return verdict

    try:
        verdicts = Verdicts(judge(battery, name, timed) for name in names)
        if "base" in battery._runs:  # the 2-process checks alone run no base run: no recipe to show
            from mrpc_check.checks.effective import effective_recipe

            verdicts.effective = effective_recipe(battery)
    finally:
        battery.close()
    for root in dict.fromkeys(v.caused_by for v in verdicts if v.caused_by):
        if root not in names:  # asked for a consequence alone: show the root it follows from
            verdicts.append(battery.verdicts[root])
    return verdicts


@contextlib.contextmanager
def _bench_conditions():
    """One torch thread while the battery runs, put back however it ends (an adapter refused before any run too)."""
    import torch

    # One thread for the tiny models: width-32 matrices gain nothing from a second one, and lose a
    # lot when another process holds a core (measured 2026-12-02 on 2 cores, README example loop:
    # idle 11.3 s with 1 thread vs 10.2 s with 2; beside one busy process 11.6 s vs 17.5 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# Exit codes: 0 every check passed (warnings pass unless strict), 1 the loop has a bug, 3 no bug found but some
# check could not judge (an `error`: report it), as pytest tells errors from failures. 2 stays the CLI's bad input.
EXIT_ERRORS = 3


def counts(verdicts: list[Verdict]) -> dict:
    """How many verdicts of each status: ``{"pass", "warn", "fail", "skip", "error"}``."""
    return {status: sum(v.status == status for v in verdicts) for status in STATUSES}


def root_causes(verdicts: list[Verdict]) -> list[str]:
    """Failing checks that no other failure explains, in table order."""
    return [v.check for v in verdicts if v.status == "fail" and not v.caused_by]


def exit_status(verdicts: list[Verdict], strict: bool = False) -> int:
    """1 on any failure (or, with ``strict``, any warning); else 3 when a check could not judge (``error``); else 0."""
    if any(v.status == "fail" or (strict and v.status == "warn") for v in verdicts):
        return 1
    return EXIT_ERRORS if any(v.status == "error" for v in verdicts) else 0


def _table_order(verdicts: list[Verdict]) -> list[Verdict]:
    def rank(v: Verdict) -> int:
        if v.status == "fail":
            return 3 if v.caused_by else 0
        return {"warn": 1, "error": 2}.get(v.status, 4)
    return sorted(verdicts, key=rank)  # stable: registry order within each rank


def summary_line(verdicts: list[Verdict]) -> str:
    c = counts(verdicts)
    line = f"{c['pass']} passed, {c['fail']} failed, {c['warn']} warned, {c['skip']} skipped"
    return line + (f", {c['error']} could not be judged (error)" if c["error"] else "")


def format_table(loop: str, verdicts: list[Verdict], capabilities=None) -> str:
    """check | verdict | measured / likely bug -> fix, one line per check, root causes first."""
    lines = [f"mrpc-check verify: {loop}"]
    if capabilities is not None and capabilities.absent():
        lines.append(f"declared absent (not varied, checks on them skipped): {', '.join(capabilities.absent())}")
    lines.append(f"{'check':<18} {'verdict':<7} measured / likely bug -> fix")
    for v in _table_order(verdicts):
        if v.caused_by:
            text = f"{v.bug} ({v.figure})" if v.status == "fail" else v.figure
        elif v.status in ("fail", "warn", "error"):
            text = f"{v.bug} ({v.figure}) -> {v.fix}"
        else:
            text = v.figure
        lines.append(f"{v.check:<18} {v.status.upper():<7} {text}")
    effective = getattr(verdicts, "effective", None)
    if effective is not None:  # after the verdicts, before the closing lines: what the loop did, beside the recipe
        from mrpc_check.checks.effective import format_effective

        lines.append(format_effective(effective))
    roots = root_causes(verdicts)
    if roots:
        lines.append(f"root cause{'s' if len(roots) > 1 else ''}: {', '.join(roots)} (fix {'these' if len(roots) > 1 else 'it'} first, then run again)")
    errors = [v.check for v in verdicts if v.status == "error"]
    if errors:
        lines.append(f"not judged (error, not the loop's bug): {', '.join(errors)}: report the first to mrpc_check with this loop")
    lines.append(summary_line(verdicts))
    return "\n".join(lines)


def to_json(loop: str, verdicts: list[Verdict], strict: bool = False, capabilities=None) -> str:
    """``{"loop", "capabilities", "verdicts": [{check, status, figure, bug, fix, caused_by, extra}], "counts", "root_causes",
    "failed", "strict", "exit", "effective_recipe"}``; ``capabilities``: what the adapter declared (supports, absent,
    resumable, distributed, extras); ``effective_recipe``: ``{"rows": [{name, recipe, observed, relation}], "error"}``."""
    ordered = _table_order(verdicts)
    caps = capabilities.to_dict() if capabilities is not None else None
    effective = getattr(verdicts, "effective", None)
    return json.dumps({"loop": loop, "capabilities": caps, "verdicts": [v.to_dict() for v in ordered], "counts": counts(verdicts),
                       "root_causes": root_causes(ordered), "failed": counts(verdicts)["fail"], "strict": strict,
                       "exit": exit_status(verdicts, strict),
                       "effective_recipe": effective.to_dict() if effective is not None else None}, indent=2)
