"""Ray's overhead per task, side by side in one run: the same 4-seed tiny sweep on the local engine and on Ray.

    python benchmarks/bench_sweep_engines.py --data ../shared/data/glue/MRPC
    python benchmarks/bench_sweep_engines.py --data ... --address 127.0.0.1:6379   # an existing cluster

A tiny BERT (2 layers, width 32, the real vocabulary) trains 1 epoch on 16 MRPC rows per seed,
so the figure is the engine's cost, not training's. Ray's tasks declare every core of this
machine, so they run one at a time, as the local engine's do: the difference of the two walls,
over the number of seeds, is the overhead per task (a fresh worker process importing torch and
transformers, scheduling, the result's trip back). Ray's own start (``ray.init`` of a local
instance) is timed apart. Prints one JSON line; the per-seed metrics of both engines must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from bench_train import gemm_peak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MRPC_DATA"), help="a GLUE MRPC folder [$MRPC_DATA]")
    parser.add_argument("--seeds", default="1-4")
    parser.add_argument("--address", default=None, help="an existing Ray cluster; without it a local instance")
    args = parser.parse_args()
    if not args.data:
        raise SystemExit("bench_sweep_engines: pass --data (a GLUE MRPC folder) or set MRPC_DATA")
    import ray

    from mrpc_check.acceptance import sweep
    from mrpc_check.acceptance.floors import Floors
    from mrpc_check.pipeline.config import make_config
    from mrpc_check.pipeline.model import load_tokenizer, resolve_checkpoint
    from mrpc_check.testing import make_tiny_model

    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    tokenizer = load_tokenizer(resolve_checkpoint("minilm"))
    make_tiny_model(len(tokenizer)).save_pretrained(work / "tiny")
    tokenizer.save_pretrained(work / "tiny")
    cfg = make_config(model=str(work / "tiny"), data=args.data, epochs=1, max_train_samples=16)
    seeds = sweep.parse_seeds(args.seeds)
    floors = Floors(min_f1=0.9, min_accuracy=0.9)
    cores = os.cpu_count() or 1

    started = time.perf_counter()
    local = sweep.run_sweep(cfg, seeds, work / "local", floors, progress=False)
    local_s = time.perf_counter() - started

    started = time.perf_counter()
    ray.init(address=args.address, **({} if args.address else {"num_cpus": cores, "include_dashboard": False}),
             log_to_driver=False, runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    init_s = time.perf_counter() - started
    started = time.perf_counter()
    options = sweep.EngineOptions(engine="ray", address=args.address, cpus_per_run=cores, progress=False)
    on_ray = sweep.run_sweep(cfg, seeds, work / "ray", floors, options=options)
    ray_s = time.perf_counter() - started
    ray.shutdown()

    def computed(run):
        return {k: v for k, v in run.items() if k not in ("train_s", "report")}

    print(json.dumps({
        "gemm_fp32_gflops": round(gemm_peak(torch.float32), 1), "cores": cores, "seeds": len(seeds),
        "local_s": round(local_s, 1), "ray_init_s": round(init_s, 1), "ray_s": round(ray_s, 1),
        "overhead_per_task_s": round((ray_s - local_s) / len(seeds), 1), "ratio": round(ray_s / local_s, 2),
        "same_per_seed_metrics": [computed(r) for r in local["runs"]] == [computed(r) for r in on_ray["runs"]],
        "f1": [r["f1"] for r in on_ray["runs"]],
    }))


if __name__ == "__main__":
    main()
