"""Time of the check battery per loop, side by side in one run, with this CPU's GEMM peaks.

    python benchmarks/bench_battery.py                      # manual, accelerate, trainer, plain loop
    python benchmarks/bench_battery.py --loops manual,trainer --json out.json
    python benchmarks/bench_battery.py --as-typed          # README's command, idle and beside a busy process,
                                                           # beside the bare imports (medians of 3, interleaved)

Each loop gets one fresh battery (tiny BERT, real vocabulary) running every single-process check,
as `mrpc-check verify` does; the figure includes the battery's set-up. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from bench_train import gemm_peak  # noqa: E402
from mrpc_check.checks import load_adapter, run_battery  # noqa: E402


EXAMPLE = "examples/my_loop.py:adapter"


def as_typed(busy: bool) -> float:
    """Wall seconds of `mrpc-check verify --loop examples/my_loop.py:adapter` as a new process, optionally
    beside one CPU-bound process (what a user's machine with one other job looks like)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mrpc_check", "verify", "--loop", EXAMPLE], cwd=root,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
    finally:
        if spinner:
            spinner.kill()
    if done.returncode != 0:
        raise SystemExit(f"bench_battery: verify exited {done.returncode}: {done.stderr[-300:]}")
    return round(seconds, 1)


def bare_imports(model: bool = True) -> float:
    """Wall seconds of a new process that only imports what `verify` imports: torch, transformers, datasets,
    accelerate, the battery and, with ``model``, the model class the battery builds (BertForSequenceClassification:
    transformers' modelling stack, about 2 s, is imported lazily, on first use). The floor under verify's time as typed."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "import torch, transformers, datasets, accelerate, mrpc_check.checks.battery, mrpc_check.checks.harness"
    if model:
        code += "; from transformers import BertForSequenceClassification"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", default="manual,accelerate,trainer,example")
    parser.add_argument("--json", default=None)
    parser.add_argument("--as-typed", action="store_true", help="time README's verify command idle and beside a busy process")
    args = parser.parse_args()
    if args.as_typed:
        # Interleaved, three of each: the figures share the machine's state of the moment.
        imports, idle = [], []
        for _ in range(3):
            imports.append((bare_imports(model=False), bare_imports(model=True)))
            idle.append(as_typed(False))
        without_model = sorted(i[0] for i in imports)[1]
        imports, idle = sorted(i[1] for i in imports)[1], sorted(idle)[1]
        busy = as_typed(True)
        print(json.dumps({"command": f"mrpc-check verify --loop {EXAMPLE}", "gemm_fp32_gflops": round(gemm_peak(torch.float32), 1),
                          "bare_imports_without_model_class_s": without_model, "bare_imports_s": imports,
                          "idle_s": idle, "verify_minus_imports_s": round(idle - imports, 1),
                          "met_within_2s_of_imports": idle - imports <= 2,
                          "beside_one_busy_process_s": busy, "ratio": round(busy / idle, 2),
                          "budget_idle_s": 8, "met_idle": idle <= 8, "met_contended": busy <= 2 * idle}))
        return
    figures = {"torch_threads": torch.get_num_threads(), "gemm_fp32_gflops": round(gemm_peak(torch.float32), 1),
               "gemm_bf16_gflops": round(gemm_peak(torch.bfloat16), 1), "loops": {}}
    for loop in args.loops.split(","):
        started = time.perf_counter()
        verdicts = run_battery(load_adapter(loop))
        from mrpc_check.checks.battery import counts

        figures["loops"][loop] = {"seconds": round(time.perf_counter() - started, 1), "counts": counts(verdicts),
                                  "checks": len(verdicts)}
    slowest = max(v["seconds"] for v in figures["loops"].values())
    figures["slowest_share_of_60s_budget"] = round(slowest / 60, 2)
    line = json.dumps(figures)
    print(line)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
