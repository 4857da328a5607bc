"""What each of `--fast`'s levers buys, side by side in one run: ms per training step of MiniLM.

    python benchmarks/fast_levers.py --data ../shared/data/glue/MRPC [--steps 12] [--json out.json]

The same batches (32 length-sorted pairs of real MRPC, shuffled) for every variant, fp32, fused
AdamW at 1e-4: the fast mode's step before these levers, and with each lever (the word embeddings
frozen, dropout off, the embeddings and the first N encoder layers frozen). The variants take
turns on each batch, after two warm-up batches. Prints one line per variant and one JSON line
with the fp32 GEMM peak measured before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from bench_train import gemm_peak  # noqa: E402

BASE = "batch 32, grouped (the fast mode before these levers)"
VARIANTS = (
    (BASE, {}),
    ("+ word embeddings frozen", {"freeze_word_embeddings": True}),
    ("+ dropout off (alone)", {"dropout": 0.0}),
    ("dropout off, embeddings + 2 layers frozen (--fast)", {"dropout": 0.0, "freeze_layers": 2}),
    ("dropout off, embeddings + 3 layers frozen", {"dropout": 0.0, "freeze_layers": 3}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MRPC_DATA"), help="GLUE MRPC folder [$MRPC_DATA]")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not args.data:
        raise SystemExit("fast_levers.py: pass --data DIR (a GLUE MRPC folder) or set MRPC_DATA")
    from mrpc_check.pipeline.batching import make_collator
    from mrpc_check.pipeline.data import load_mrpc
    from mrpc_check.pipeline.model import build_optimizer, load_model, load_tokenizer, resolve_checkpoint

    checkpoint = resolve_checkpoint("minilm")
    tokenizer = load_tokenizer(checkpoint)
    train = load_mrpc(args.data)["train"]
    rng = random.Random(0)
    rows = rng.sample(range(len(train)), 32 * (args.steps + 2))
    encoded = sorted((dict(tokenizer(train[i]["sentence1"], train[i]["sentence2"], truncation=True), labels=train[i]["label"])
                      for i in rows), key=lambda e: len(e["input_ids"]))
    collate = make_collator(tokenizer)
    batches = [collate(encoded[i:i + 32]) for i in range(0, len(encoded), 32)]
    rng.shuffle(batches)

    peak_before = gemm_peak(torch.float32)
    # Every variant steps through the same batch before the next batch is taken (round robin), so
    # the machine's drift over the run (its GEMM peak moved 128 -> 152 GFLOP/s in one run) falls on
    # all of them alike instead of on whichever ran last.
    runs = []
    for name, lever in VARIANTS:
        torch.manual_seed(0)
        model = load_model(checkpoint, ["not_equivalent", "equivalent"], dropout=lever.get("dropout"),
                           freeze_layers=lever.get("freeze_layers", 0)).train()
        if lever.get("freeze_word_embeddings"):
            model.get_input_embeddings().weight.requires_grad_(False)
        runs.append((name, model, build_optimizer(model, 1e-4), []))
    for i, batch in enumerate(batches):
        for name, model, optimizer, times in runs:
            started = time.perf_counter()
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i >= 2:  # the first steps pay one-off allocation costs
                times.append(time.perf_counter() - started)
    peak_after = gemm_peak(torch.float32)
    figures = {name: 1000 * sum(times) / len(times) for name, _, _, times in runs}
    speedups = {name: round(figures[BASE] / ms, 2) for name, ms in figures.items()}
    for name, ms in figures.items():
        print(f"{name:<55} {ms:7.0f} ms/step  x{speedups[name]:.2f}")
    print(json.dumps({"benchmark": "fast_levers", "ms_per_step": {k: round(v, 1) for k, v in figures.items()}, "speedup": speedups,
                      "fp32_peak_gflops": {"before": round(peak_before, 1), "after": round(peak_after, 1)},
                      "threads": torch.get_num_threads()}))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
