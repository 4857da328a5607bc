"""The quick tier as a user types it (`pytest -m "not slow"`), this tree beside another commit, in one run.

    python benchmarks/quick_tier.py                         # this working tree, once, with the top costs
    python benchmarks/quick_tier.py --compare 8f6eeb6 -n 2  # that commit and this tree, interleaved, twice each

The other commit is checked out into a temporary git worktree and run with its own code first on
``PYTHONPATH`` (same environment, same data, same machine); the runs alternate, so the machine's
drift falls on both alike. Each run is `python -m pytest -m "not slow" -q -p no:cacheprovider` with
``MRPC_DATA`` set, nothing else running. Prints per run the wall seconds and pytest's closing line,
then the medians and their ratio, then this tree's 15 costliest tests (``--durations``), as one
JSON line at the end. Nothing is timed inside a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tier(tree: Path, durations: bool = False) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(tree))
    env.setdefault("MRPC_DATA", str(ROOT.parent / "shared" / "data" / "glue" / "MRPC"))
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"]
    if durations:
        command.append("--durations=15")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    closing = lines[-1] if lines else done.stderr.strip()[-200:]
    slowest = [line for line in lines if re.match(r"^\d+\.\d+s (call|setup|teardown) ", line)]
    return {"wall_s": round(wall, 1), "exit": done.returncode, "closing": closing, "slowest": slowest}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="REV", help="another commit to time beside this tree")
    parser.add_argument("-n", type=int, default=1, help="runs of each (interleaved); the median is reported")
    args = parser.parse_args(argv)
    trees = {"this tree": ROOT}
    scratch = None
    if args.compare:
        scratch = Path(tempfile.mkdtemp(prefix="mrpc-tier-"))
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(scratch / "other"), args.compare],
                       check=True, capture_output=True)
        # The other tree finds ../shared/data as this one does: the data is passed by MRPC_DATA, not found beside it.
        trees = {args.compare: scratch / "other", "this tree": ROOT}
    results = {name: [] for name in trees}
    try:
        for i in range(args.n):
            for name, tree in trees.items():
                last = i == args.n - 1 and name == "this tree"
                result = run_tier(tree, durations=last)
                results[name].append(result)
                print(f"{name}: {result['wall_s']} s, exit {result['exit']}: {result['closing']}", flush=True)
    finally:
        if scratch is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(scratch / "other")], capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
    medians = {name: statistics.median(r["wall_s"] for r in runs) for name, runs in results.items()}
    for name, value in medians.items():
        print(f"median wall, {name}: {value:.1f} s")
    summary = {"medians_s": medians, "runs": {k: [{"wall_s": r["wall_s"], "closing": r["closing"]} for r in v] for k, v in results.items()}}
    if args.compare:
        ratio = medians["this tree"] / medians[args.compare]
        print(f"this tree / {args.compare}: {ratio:.3f} ({medians['this tree'] - medians[args.compare]:+.1f} s)")
        summary["ratio"] = round(ratio, 3)
    print("costliest tests of this tree:")
    for line in results["this tree"][-1]["slowest"]:
        print("  " + line)
    print(json.dumps(summary))
    return 0 if all(r["exit"] == 0 for runs in results.values() for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
