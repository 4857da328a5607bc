"""Does torch.compile pay for the walkthrough recipe on this machine? Eager and compiled, side by side.

    python benchmarks/compile_step.py --data ../shared/data/glue/MRPC [--steps 40] [--recipe-steps 1377]

Two models from the same MiniLM weights and seed, the walkthrough step (batch 8 in random order,
fp32, fused AdamW at 5e-5, pad to the longest in the batch), the same batches for both. The
compiled one is ``torch.compile(model, dynamic=True)`` (batches change length every step: static
shapes would recompile per length). Prints the compile cost (first 3 steps, minus eager's), ms
per step after it, the recompilations counted by torch._dynamo, the fp32 GEMM peak of this run,
and the projected wall time over a whole run of ``--recipe-steps`` steps (3 epochs of 3,668
pairs = 1,377 by default); last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from bench_train import gemm_peak  # noqa: E402  (benchmarks/ is on sys.path when a script here runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MRPC_DATA"), help="GLUE MRPC folder [$MRPC_DATA]")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per mode, after 3 warm-up steps [%(default)s]")
    parser.add_argument("--recipe-steps", type=int, default=1377, help="optimizer steps of a whole run, for the projection [%(default)s]")
    args = parser.parse_args()
    if not args.data:
        parser.error("pass --data DIR or set MRPC_DATA to a GLUE MRPC folder")

    from mrpc_check.pipeline.batching import make_collator, make_train_loader
    from mrpc_check.pipeline.data import load_mrpc
    from mrpc_check.pipeline.model import build_optimizer, load_model, load_tokenizer, resolve_checkpoint
    from mrpc_check.pipeline.tokenize import tokenize_dataset

    checkpoint = resolve_checkpoint("minilm")
    tokenizer = load_tokenizer(checkpoint)
    raw = load_mrpc(args.data)
    tokenized = tokenize_dataset(raw, tokenizer, max_length=512)
    loader = iter(make_train_loader(tokenized["train"], make_collator(tokenizer), 8, 42))
    batches = [next(loader) for _ in range(args.steps + 3)]  # the same batches for both modes
    peak = gemm_peak(torch.float32)

    results = {}
    for mode in ("eager", "compiled"):
        torch.manual_seed(42)
        model = load_model(checkpoint, raw["train"].features["label"].names).train()
        optimizer = build_optimizer(model, 5e-5)
        forward = torch.compile(model, dynamic=True) if mode == "compiled" else model
        torch._dynamo.reset()
        from torch._dynamo.utils import counters

        counters.clear()

        def step(batch):
            loss = forward(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss)

        start = time.perf_counter()
        first = [step(b) for b in batches[:3]]
        warm = time.perf_counter() - start
        start = time.perf_counter()
        losses = first + [step(b) for b in batches[3:]]
        per_step = (time.perf_counter() - start) / args.steps
        results[mode] = {"first_3_steps_s": round(warm, 1), "ms_per_step": round(per_step * 1000, 1),
                         "frames_compiled": int(sum(counters["stats"].get(k, 0) for k in ("unique_graphs",))),
                         "recompiles": int(counters["recompiles"].total()) if "recompiles" in counters else 0,
                         "losses": losses}
        print(f"{mode:>9}: first 3 steps {warm:6.1f} s, then {per_step * 1000:6.0f} ms/step", flush=True)

    eager, compiled = results["eager"], results["compiled"]
    compile_cost = compiled["first_3_steps_s"] - eager["first_3_steps_s"]
    projected = {mode: round(r["first_3_steps_s"] + r["ms_per_step"] / 1000 * (args.recipe_steps - 3), 1) for mode, r in results.items()}
    drift = max(abs(a - b) for a, b in zip(eager["losses"], compiled["losses"]))
    print(f"compile cost ~{compile_cost:.0f} s; per step compiled/eager x{compiled['ms_per_step'] / eager['ms_per_step']:.2f}; "
          f"projected run ({args.recipe_steps} steps): eager {projected['eager']:.0f} s, compiled {projected['compiled']:.0f} s; "
          f"largest loss difference {drift:.2e}; fp32 GEMM peak {peak:.0f} GFLOP/s, {torch.get_num_threads()} threads")
    for r in results.values():
        r.pop("losses")
    print(json.dumps({"benchmark": "compile_step", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "fp32_peak_gflops": round(peak, 1), "steps": args.steps, "results": results,
                      "compile_cost_s": round(compile_cost, 1), "speedup_per_step": round(eager["ms_per_step"] / compiled["ms_per_step"], 3),
                      "projected_run_s": projected, "largest_loss_difference": drift}))


if __name__ == "__main__":
    main()
