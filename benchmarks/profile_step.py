"""Where a training step spends its time, measured with torch.profiler, per mode.

    python benchmarks/profile_step.py --data ../shared/data/glue/MRPC [--mode default|fast|both] [--steps 50] [--json out.json]

MiniLM (the offline stand-in for bert-base-uncased). ``default``: the walkthrough recipe as
`mrpc-check train` runs it (batch 8 in random order, fp32, fused AdamW at 5e-5). ``fast``:
`--fast` as it resolves on this CPU (batch 32 length-grouped, lr 1e-4, no dropout, embeddings and
the first 2 layers frozen; bf16 autocast only where the CPU multiplies bf16 natively). After a few warm-up steps, ``--steps`` steps run under
the profiler, each split into data (collation), forward, backward and optimizer blocks. Prints
a table of the step's wall time by block and, within the operators, by kind (matrix products,
attention, normalisation, elementwise and the rest), with the matrix products' achieved
GFLOP/s as a share of this CPU's fp32 GEMM peak measured in the same run. Python and dispatch
overhead is the wall time that no operator accounts for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import gemm_peak  # noqa: E402  one peak measurement for every benchmark

GEMM = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
ATTENTION = ("scaled_dot_product", "softmax", "_flash_attention")
NORM = ("layer_norm",)
ELEMENTWISE = ("aten::add", "aten::mul", "aten::div", "aten::sub", "gelu", "dropout", "aten::copy_", "aten::fill_",
               "aten::zero_", "bernoulli", "aten::tanh", "aten::where", "aten::masked_fill", "aten::embedding", "aten::sum", "aten::mean")


def kind(name: str) -> str:
    if name in GEMM:
        return "matrix products (mm/addmm/bmm)"
    if any(k in name for k in ATTENTION):
        return "attention (sdpa, softmax)"
    if any(k in name for k in NORM):
        return "layer norm"
    if name.startswith("aten::_fused_adamw") or "adamw" in name.lower():
        return "optimizer kernel (fused AdamW)"
    if any(k in name for k in ELEMENTWISE):
        return "elementwise, embedding, reductions"
    return "other operators"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MRPC_DATA"), help="GLUE MRPC folder [$MRPC_DATA]")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--mode", choices=("default", "fast", "both"), default="both")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    if not args.data:
        raise SystemExit("profile_step.py: pass --data DIR (a GLUE MRPC folder) or set MRPC_DATA")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    peak_before = gemm_peak(torch.float32)
    results = {}
    for mode in (("default", "fast") if args.mode == "both" else (args.mode,)):
        results[mode] = profile_mode(args, mode, peak_before)
    if len(results) > 1:
        print("share of this CPU's fp32 GEMM peak reached by the matrix products: "
              + ", ".join(f"{m} {r['gemm_share_of_peak']:.1%}" for m, r in results.items()))
    print(json.dumps({"benchmark": "profile_step", "modes": results}))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


def profile_mode(args, mode: str, peak_before: float) -> dict:
    from torch.profiler import ProfilerActivity, profile, record_function
    from transformers import set_seed

    from mrpc_check.pipeline.batching import make_collator, make_train_loader
    from mrpc_check.pipeline.config import TrainConfig, fast_preset
    from mrpc_check.pipeline.data import load_mrpc
    from mrpc_check.pipeline.model import autocast_context, build_optimizer, load_model, load_tokenizer, resolve_checkpoint
    from mrpc_check.pipeline.tokenize import max_length_for, token_lengths, tokenize_dataset

    d = TrainConfig()
    recipe = {"batch_size": d.batch_size, "lr": d.lr, "group_by_length": False, "dropout": None, "freeze_layers": 0,
              "mixed_precision": "no"}
    if mode == "fast":
        recipe.update({k: v for k, v in fast_preset("cpu")[0].items() if k in recipe})
    raw = load_mrpc(args.data)
    checkpoint = resolve_checkpoint(args.model)
    tokenizer = load_tokenizer(checkpoint)
    tokenized = tokenize_dataset(raw, tokenizer, max_length_for(tokenizer))
    set_seed(42)
    model = load_model(checkpoint, raw["train"].features["label"].names, dropout=recipe["dropout"],
                       freeze_layers=recipe["freeze_layers"]).train()
    optimizer = build_optimizer(model, recipe["lr"])
    lengths = token_lengths(tokenized["train"]) if recipe["group_by_length"] else None
    loader = iter(make_train_loader(tokenized["train"], make_collator(tokenizer), recipe["batch_size"], 42, lengths=lengths))
    amp = torch.bfloat16 if recipe["mixed_precision"] == "bf16" else None

    def step(timed: dict) -> None:
        t0 = time.perf_counter()
        with record_function("data"):
            batch = next(loader)
        t1 = time.perf_counter()
        with record_function("forward"), autocast_context(torch.device("cpu"), amp):
            loss = model(**batch).loss
        t2 = time.perf_counter()
        with record_function("backward"):
            loss.backward()
        t3 = time.perf_counter()
        with record_function("optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        for name, dt in (("data", t1 - t0), ("forward", t2 - t1), ("backward", t3 - t2), ("optimizer", t4 - t3)):
            timed[name] = timed.get(name, 0.0) + dt

    for _ in range(args.warmup):
        step({})
    blocks: dict = {}
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(args.steps):
            step(blocks)
    wall = time.perf_counter() - started
    peak = max(peak_before, gemm_peak(torch.float32))

    kinds: dict = {}
    gemm_flops = 0.0
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        k = kind(event.key)
        kinds[k] = kinds.get(k, 0.0) + event.self_cpu_time_total / 1e6  # s, this operator's own time
        if event.key in GEMM:
            gemm_flops += event.flops or 0
    operators = sum(kinds.values())
    kinds["Python, dispatch and autograd overhead (wall - operators)"] = max(wall - operators, 0.0)
    gemm_s = kinds.get("matrix products (mm/addmm/bmm)", 0.0)
    achieved = gemm_flops / gemm_s / 1e9 if gemm_s else 0.0

    per_step = wall / args.steps
    print(f"\n{mode} step (MiniLM, {recipe}), {args.steps} steps profiled, "
          f"{torch.get_num_threads()} threads: {per_step * 1000:.0f} ms per step, {gemm_flops / wall / 1e9:.1f} GFLOP/s of matrix "
          f"products over the whole step ({gemm_flops / wall / 1e9 / peak:.1%} of the fp32 peak)")
    print(f"{'block':<62}{'ms/step':>9}{'share':>8}")
    for name in ("data", "forward", "backward", "optimizer"):
        print(f"{name:<62}{blocks[name] / args.steps * 1000:>9.1f}{blocks[name] / wall:>8.1%}")
    print(f"{'operator kind (self time) / overhead':<62}{'ms/step':>9}{'share':>8}")
    for name, seconds in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"{name:<62}{seconds / args.steps * 1000:>9.1f}{seconds / wall:>8.1%}")
    top = sorted((e for e in prof.key_averages() if e.key.startswith("aten::")), key=lambda e: -e.self_cpu_time_total)[:8]
    print("largest operators (self time, ms/step): " + ", ".join(f"{e.key[6:]} {e.self_cpu_time_total / 1e3 / args.steps:.0f}" for e in top))
    print(f"matrix products: {achieved:.1f} GFLOP/s while they run, {achieved / peak:.1%} of this CPU's fp32 GEMM peak "
          f"({peak:.1f} GFLOP/s, 1024^3, measured in this run)")
    return {"recipe": recipe, "ms_per_step": per_step * 1000, "threads": torch.get_num_threads(), "steps": args.steps,
            "blocks_ms": {k: v / args.steps * 1000 for k, v in blocks.items()},
            "kinds_ms": {k: v / args.steps * 1000 for k, v in kinds.items()},
            "top_operators_ms": {e.key: e.self_cpu_time_total / 1e3 / args.steps for e in top},
            "gemm_gflops": achieved, "fp32_peak_gflops": peak, "gemm_share_of_peak": achieved / peak if peak else None,
            "step_share_of_peak": gemm_flops / wall / 1e9 / peak if peak else None}


if __name__ == "__main__":
    main()
