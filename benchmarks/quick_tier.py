"""The quick tier as a user types it (`pytest -m "not slow"`), this tree beside another commit, in one run.

    python benchmarks/quick_tier.py                          # this working tree, once
    python benchmarks/quick_tier.py --compare bdc0912 -n 3   # that commit and this tree, interleaved, 3 times each
    python benchmarks/quick_tier.py --profile                # plus one probed run: where the time goes
    python benchmarks/quick_tier.py --verify --compare REV -n 3   # README's `mrpc-check verify` example instead

The other commit is checked out into a temporary git worktree and run with its own code first on
``PYTHONPATH`` (same environment, same data, same machine); the runs alternate, so the machine's
drift falls on both alike. Each timed run is exactly `python -m pytest -m "not slow" -q -p
no:cacheprovider` with ``MRPC_DATA`` set, nothing else running: the wall seconds and pytest's closing
line per run, then the medians and their ratio.

``--profile`` adds, after the timed runs, one run of this tree with ``--durations=0`` and the probe
plugin (benchmarks/tier_probe.py), and prints what it found: when the xdist controller was configured
and each worker had collected (the start-up every run pays before its first test), each worker's
busy seconds and its garbage-collector seconds, the test files and tests that cost most. Nothing is
timed inside a test.

What the profile showed on 2026-12-06 (2 cores, AVX512-BF16, bdc0912 -> this tree), and the levers
taken: full garbage collections walked the ~450k objects torch/transformers/datasets and collection
create, and the Trainer runs one per training (accelerator.free_memory): gc.freeze after collection.
The controller imported torch and hypothesis before any worker started (2.1 s to configure): lazy.
Each battery re-tokenized its 52 pairs and serialised the 30k vocabulary to fingerprint them:
shared per model family, and the tokenizer's state read without a JSON round trip. The observer
summed per-tensor norms with a host sync each: one foreach call per step.
"""

from __future__ import annotations

import argparse
import collections
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
TIER = ["-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"]
# README's first verify command: the cost a user pays for one battery on their loop (closing line: its counts).
VERIFY = ["-c", "import sys; from mrpc_check.cli import main; sys.exit(main())", "verify", "--loop", "examples/my_loop.py:adapter"]


def run_tier(tree: Path, extra: tuple = (), env_extra: dict | None = None, command: list = TIER) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(tree))
    env.update(env_extra or {})
    env.setdefault("MRPC_DATA", str(ROOT.parent / "shared" / "data" / "glue" / "MRPC"))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *command, *extra], cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    closing = lines[-1] if lines else done.stderr.strip()[-200:]
    return {"wall_s": round(wall, 1), "exit": done.returncode, "closing": closing, "lines": lines}


def profile(tree: Path) -> dict:
    """One probed run of ``tree``: start-up, per-process busy and gc seconds, the costliest files and tests."""
    probes = Path(tempfile.mkdtemp(prefix="mrpc-tier-probe-"))
    try:
        env = {"PYTHONPATH": os.pathsep.join([str(tree), str(ROOT / "benchmarks")]),
               "TIER_PROBE_DIR": str(probes), "TIER_PROBE_T0": repr(time.time())}
        result = run_tier(tree, ("--durations=0", "-p", "tier_probe"), env)
        processes = {p.stem: json.loads(p.read_text()) for p in sorted(probes.glob("*.json"))}
    finally:
        shutil.rmtree(probes, ignore_errors=True)
    by_file, tests = collections.Counter(), []
    for line in result["lines"]:
        m = re.match(r"^(\d+\.\d+)s (call|setup|teardown)\s+(\S+)", line)
        if m:
            by_file[m[3].split("::")[0]] += float(m[1])
            tests.append((float(m[1]), m[2], m[3]))
    tests.sort(reverse=True)
    return {"wall_s": result["wall_s"], "closing": result["closing"], "processes": processes,
            "files": by_file.most_common(12), "tests": tests[:15], "tests_total_s": round(sum(t[0] for t in tests), 1)}


def print_profile(found: dict) -> None:
    print(f"\nprofile of this tree (one run with --durations=0 and the probe: {found['wall_s']} s, {found['closing']})")
    controller = found["processes"].get("controller")
    if controller:
        print(f"  controller configured at {controller['configured']:.1f} s")
    for name, p in found["processes"].items():
        if name == "controller":
            continue
        print(f"  {name}: collected at {p['collected']:.1f} s, first test at {p['first']:.1f} s, last ended at {p['last']:.1f} s; "
              f"{p['tests']} tests busy {p['busy']:.1f} s; garbage collector {p['gc_s']:.1f} s "
              f"({'/'.join(map(str, p['gc_runs']))} runs, {'/'.join(f'{t:.1f}' for t in p['gc_s_by_generation'])} s, of generations 0/1/2)")
    print(f"  test phases summed over the workers: {found['tests_total_s']} s; costliest files:")
    for name, seconds in found["files"]:
        print(f"    {seconds:6.1f} s  {name}")
    print("  costliest tests:")
    for seconds, phase, name in found["tests"]:
        print(f"    {seconds:6.2f} s  {phase:<8} {name}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="REV", help="another commit to time beside this tree")
    parser.add_argument("-n", type=int, default=1, help="runs of each (interleaved); the median is reported")
    parser.add_argument("--profile", action="store_true", help="then one probed run of this tree: where the time goes")
    parser.add_argument("--verify", action="store_true", help="time README's `mrpc-check verify` example instead of the tier")
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
        for _ in range(args.n):
            for name, tree in trees.items():
                result = run_tier(tree, command=VERIFY if args.verify else TIER)
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
    if args.profile:
        found = profile(ROOT)
        print_profile(found)
        summary["profile"] = {k: v for k, v in found.items() if k != "tests"}
    print(json.dumps(summary))
    timed_ok = all(r["exit"] == 0 for runs in results.values() for r in runs)
    return 0 if timed_ok and (not args.profile or "passed" in found["closing"] and "failed" not in found["closing"]) else 1


if __name__ == "__main__":
    sys.exit(main())
