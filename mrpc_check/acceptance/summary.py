"""A sweep's summary: each run's entry, the spread and verdict by a printed rule, sweep.json, the plot.

Split from :mod:`mrpc_check.acceptance.sweep` (which plans and runs the seeds): what is computed from
finished runs, and the one place ``sweep.json`` is written. Two sweeps may share a folder (two seed lists of
one recipe started together): :func:`write_summary` writes under a lock and merges the runs another sweep
of the same recipe already recorded there, by seed, so neither sweep's results are lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from mrpc_check.acceptance.floors import Floors
from mrpc_check.errors import ConfigError

RULES = ("median", "all")
SWEEP_JSON = "sweep.json"
LOCK_NAME = ".mrpc-sweep.lock"  # held while sweep.json is read, merged and rewritten (moments)
RUNNING_NAME = ".mrpc-sweep.running"  # held by a running sweep: a second one on the folder says so
# Config fields that differ between seeds of one sweep, or between a sweep and its resumption,
# without changing the recipe.
PER_RUN = {"seed", "output_dir", "overwrite", "resume", "checkpoint_every", "log_every", "num_workers"}


def _quartiles(values: Sequence[float]) -> dict:
    import numpy as np

    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1, "min": float(min(values)), "max": float(max(values))}


def rule_text(floors: Floors, rule: str) -> str:
    """The pass rule in words, as printed with every verdict."""
    value = "" if floors.on == "point" else " (95 % interval lower ends)"
    if rule == "median":
        return (f"no run degenerate, and median F1{value} >= {floors.min_f1} and median accuracy{value} >= {floors.min_accuracy}")
    return f"no run degenerate, and every run's F1{value} >= {floors.min_f1} and accuracy{value} >= {floors.min_accuracy}"


def summarise(runs: list[dict], floors: Floors, rule: str = "median") -> dict:
    """Spread and verdict of finished runs (each: seed, accuracy, f1, interval, degenerate[, test]).

    Returns:
        ``{"runs", "validation": {"f1": stats, "accuracy": stats}, "test": ... (when every run
        has test scores), "degenerate_rate", "rule", "passed", "failures"}``.
    """
    if rule not in RULES:
        raise ConfigError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    if not runs:
        raise ConfigError("a sweep summary needs at least one finished run")

    def judged(run: dict, name: str) -> float:
        return run[name] if floors.on == "point" else run["interval"][name][0]

    summary = {"runs": len(runs), "validation": {n: _quartiles([r[n] for r in runs]) for n in ("f1", "accuracy")}}
    if all(r.get("test") for r in runs):
        summary["test"] = {n: _quartiles([r["test"][n] for r in runs]) for n in ("f1", "accuracy")}
    degenerate = [r["seed"] for r in runs if r["degenerate"]]
    summary["degenerate_rate"] = len(degenerate) / len(runs)
    failures = [f"degenerate run(s): seed {', '.join(map(str, degenerate))}"] if degenerate else []
    for name, floor in (("f1", floors.min_f1), ("accuracy", floors.min_accuracy)):
        values = [judged(r, name) for r in runs]
        if rule == "median":
            median = _quartiles(values)["median"]
            if median < floor:
                failures.append(f"median validation {name} {median:.4f} < floor {floor}")
        else:
            low = [r["seed"] for r, v in zip(runs, values) if v < floor]
            if low:
                failures.append(f"validation {name} below floor {floor} for seed {', '.join(map(str, low))}")
    if floors.max_gap is not None:  # each seed's validation-test gap, where the data has a labelled test split
        wide = [r["seed"] for r in runs if r.get("test") and abs(r["f1"] - r["test"]["f1"]) > floors.max_gap]
        if wide:
            failures.append(f"|validation F1 - test F1| > --max-gap {floors.max_gap} for seed {', '.join(map(str, wide))}")
    summary.update({"rule": rule_text(floors, rule), "passed": not failures, "failures": failures})
    return summary


def run_entry(report: dict, seed: int, folder: Path) -> dict:
    """What a sweep keeps of one run's report."""
    m = report["metrics"]
    entry = {
        "seed": seed,
        "accuracy": m["validation"]["accuracy"],
        "f1": m["validation"]["f1"],
        "mcc": m["validation_analysis"]["mcc"],
        "interval": {k: m["validation_analysis"]["interval"][k] for k in ("f1", "accuracy")},
        "degenerate": report["degenerate"]["reason"],
        "train_s": report["train"]["runtime_s"],
        "report": str(folder / "report.json"),
    }
    if "test" in m:
        entry["test"] = {"accuracy": m["test"]["accuracy"], "f1": m["test"]["f1"]}
    return entry


def progress_line(outcome: dict, runs: list[dict], total: int) -> str:
    """One finished seed, as the driver prints it: its scores, node and minutes, and the running median."""
    entry = outcome["entry"]
    if entry is None:
        return f"seed {outcome['seed']}: FAILED {outcome['error']}"
    median = _quartiles([r["f1"] for r in runs])["median"]
    return (f"seed {entry['seed']}: f1 {entry['f1']:.4f}  accuracy {entry['accuracy']:.4f}  degenerate {entry['degenerate'] or 'no'}  "
            f"node {outcome['node']}  {outcome['minutes']:.1f} min  | median f1 {median:.4f} over {len(runs)} of {total}")


def format_summary(result: dict) -> str:
    """The sweep's verdict as a few lines for the terminal."""
    s = result["summary"]
    lines = [f"{'seed':>6}  {'F1':>7}  {'accuracy':>8}  degenerate"]
    for r in result["runs"]:
        lines.append(f"{r['seed']:>6}  {r['f1']:7.4f}  {r['accuracy']:8.4f}  {r['degenerate'] or '-'}")
    for f in result.get("failed", []):
        lines.append(f"{f['seed']:>6}  FAILED  {f['error']}")
    for split in ("validation", "test"):
        if split in s:
            for name in ("f1", "accuracy"):
                q = s[split][name]
                lines.append(f"{split} {name}: median {q['median']:.4f}  IQR {q['iqr']:.4f} [{q['q1']:.4f}, {q['q3']:.4f}]  "
                             f"min {q['min']:.4f}  max {q['max']:.4f}")
    b = result["baseline"]
    rate = f"; degenerate rate {s['degenerate_rate']:.2f}" if "degenerate_rate" in s else ""
    lines.append(f"majority baseline: F1 {b['f1']:.4f}, accuracy {b['accuracy']:.4f}{rate}")
    lines.append(f"rule: {s['rule']}")
    lines.append("PASS" if s["passed"] else "FAIL: " + "; ".join(s["failures"]))
    return "\n".join(lines)


def draw_sweep(result: dict, path: Path) -> Optional[str]:
    """Per-seed validation F1 and accuracy, with the floors, the baseline and the medians, as a PNG."""
    from mrpc_check.pipeline.report import pyplot, save_figure

    plt = pyplot()
    if plt is None:
        return f"{path.name} skipped: matplotlib is not installed (pip install 'mrpc-check[plot]')"
    runs, s = result["runs"], result["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, name, label in ((axes[0], "f1", "F1 (equivalent)"), (axes[1], "accuracy", "accuracy")):
        xs = list(range(len(runs)))
        colours = ["tab:red" if r["degenerate"] else "tab:blue" for r in runs]
        lows = [r[name] - r["interval"][name][0] for r in runs]
        highs = [r["interval"][name][1] - r[name] for r in runs]
        ax.errorbar(xs, [r[name] for r in runs], yerr=[lows, highs], fmt="none", ecolor="lightgray", capsize=3)
        ax.scatter(xs, [r[name] for r in runs], c=colours, zorder=3)
        ax.axhline(result["floors"][f"min_{name}"], color="tab:green", linestyle="--", label="floor")
        ax.axhline(result["baseline"][name], color="tab:gray", linestyle=":", label="majority baseline")
        ax.axhline(s["validation"][name]["median"], color="tab:blue", linewidth=0.8, label="median")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(r["seed"]) for r in runs])
        ax.set_xlabel("seed (red: degenerate; bars: bootstrap 95 % interval)")
        ax.set_ylabel(f"validation {label}")
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{result['config']['model']}, {result['config']['loop']} loop: {len(runs)} seeds, "
                 + ("PASS" if s["passed"] else "FAIL"), color="black" if s["passed"] else "tab:red")
    save_figure(fig, path)
    return None


def same_recipe(saved: dict, wanted: dict) -> bool:
    """Two configs name one recipe: equal but for what differs between a sweep's runs (seed, folder, resume ...)."""
    from mrpc_check.pipeline.report import normalised_paths

    wanted = normalised_paths(wanted)  # reports store absolute paths
    return {k: v for k, v in saved.items() if k not in PER_RUN} == {k: v for k, v in wanted.items() if k not in PER_RUN}


def read_summary(path: Path) -> Optional[dict]:
    """``sweep.json`` as written, or None when there is none.

    Raises:
        ConfigError: the file is not a sweep summary (truncated, hand-edited): one line naming it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not isinstance(data.get("seeds"), list):
            raise ValueError("no 'runs' and 'seeds' lists")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{str(path)!r} is not a readable sweep summary ({type(exc).__name__}: {str(exc)[:80]}): delete it "
                          "(every run stays in its seed-*/ folder and is read back) or pass another --output-dir") from None
    return data


def write_summary(out: Path, config: dict, seeds: list, runs: list, failed: list, result_of) -> dict:
    """Write ``out/sweep.json`` for this sweep's ``seeds``, merged with another sweep's of the same recipe; returns it.

    ``config`` is this sweep's recipe; ``result_of(seeds, runs, failed)`` builds the summary dict. Under a file lock, the runs and failures another
    sweep recorded for seeds this one does not run are kept (two seed lists on one folder, started together:
    both sets of results stay, whichever sweep writes last); a summary of another recipe is replaced (the sweep
    refused to start over it unless told to overwrite).
    """
    from filelock import FileLock

    from mrpc_check.pipeline.report import atomic_write_text

    path = Path(out) / SWEEP_JSON
    with FileLock(str(Path(out) / LOCK_NAME)):
        seeds_all, others_runs, others_failed = list(seeds), [], []
        try:
            existing = read_summary(path)
        except ConfigError:
            existing = None  # a damaged summary is replaced by this one (the runs themselves are in seed-*/)
        mine = set(seeds)
        if existing is not None and same_recipe(existing.get("config", {}), config):
            seeds_all += [s for s in existing["seeds"] if s not in mine]
            others_runs = [r for r in existing["runs"] if isinstance(r, dict) and r.get("seed") not in mine]
            others_failed = [f for f in existing.get("failed", []) if isinstance(f, dict) and f.get("seed") not in mine]
        result = result_of(seeds_all, list(runs) + others_runs, list(failed) + others_failed)
        if others_runs or others_failed:
            result["merged_seeds"] = sorted({r["seed"] for r in others_runs} | {f["seed"] for f in others_failed})
        atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return result
