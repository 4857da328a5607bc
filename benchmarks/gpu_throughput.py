"""bf16 training throughput of a bert-base-sized classifier on CUDA (random init from a config).

    python benchmarks/gpu_throughput.py --steps 50 --batch-size 32 --seq-len 128

Prints samples/s, tokens/s and the achieved TFLOP/s (6 x non-embedding params x tokens) for fp32
and bf16 autocast, side by side, and their ratio. Needs no pretrained weights and no data.
"""

import argparse
import sys
import time

import torch


def run(model, batch, steps: int, dtype) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    for i in range(steps + 5):
        if i == 5:  # warm-up steps excluded: kernel selection, allocator growth
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_throughput: no CUDA device: run on a GPU machine", file=sys.stderr)
        return 2
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(num_labels=2)  # bert-base: 12 layers, hidden 768, 12 heads
    g = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(1000, config.vocab_size, (args.batch_size, args.seq_len), generator=g).cuda(),
        "attention_mask": torch.ones(args.batch_size, args.seq_len, dtype=torch.long).cuda(),
        "labels": torch.randint(0, 2, (args.batch_size,), generator=g).cuda(),
    }
    rows = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        torch.manual_seed(0)
        model = BertForSequenceClassification(config).cuda().train()
        params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
        seconds = run(model, batch, args.steps, dtype)
        tokens = args.steps * args.batch_size * args.seq_len
        rows[name] = (args.steps * args.batch_size / seconds, tokens / seconds, 6 * params * tokens / seconds / 1e12)
        del model
        torch.cuda.empty_cache()
    print(f"device: {torch.cuda.get_device_name(0)}, batch {args.batch_size} x {args.seq_len}, {args.steps} steps")
    print(f"{'precision':<10}{'samples/s':>12}{'tokens/s':>12}{'TFLOP/s':>10}")
    for name, (sps, tps, tflops) in rows.items():
        print(f"{name:<10}{sps:>12.1f}{tps:>12.0f}{tflops:>10.1f}")
    print(f"bf16 / fp32 samples/s: x{rows['bf16'][0] / rows['fp32'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
