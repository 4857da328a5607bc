"""Time of the check battery per loop, side by side in one run, with this CPU's GEMM peaks.

    python benchmarks/bench_battery.py                      # manual, accelerate, trainer, plain loop
    python benchmarks/bench_battery.py --loops manual,trainer --json out.json

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", default="manual,accelerate,trainer,example")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    figures = {"torch_threads": torch.get_num_threads(), "gemm_fp32_gflops": round(gemm_peak(torch.float32), 1),
               "gemm_bf16_gflops": round(gemm_peak(torch.bfloat16), 1), "loops": {}}
    for loop in args.loops.split(","):
        started = time.perf_counter()
        verdicts = run_battery(load_adapter(loop))
        figures["loops"][loop] = {"seconds": round(time.perf_counter() - started, 1),
                                  "failed": sum(v.status == "fail" for v in verdicts), "checks": len(verdicts)}
    slowest = max(v["seconds"] for v in figures["loops"].values())
    figures["slowest_share_of_60s_budget"] = round(slowest / 60, 2)
    line = json.dumps(figures)
    print(line)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
