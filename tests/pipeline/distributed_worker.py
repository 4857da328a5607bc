"""Run by tests/pipeline/test_distributed.py on two CPU processes (torchrun, gloo).

Trains the tiny BERT with the Accelerate loop on every process, gathers an
evaluation split whose size is not a multiple of the batch, and (main process)
writes what the test compares against a single-process run.

    python -m torch.distributed.run --nproc_per_node 2 tests/pipeline/distributed_worker.py OUT_DIR ACCUM
"""

import json
import sys
from pathlib import Path

import torch


def main(out_dir: str, accum: int) -> None:
    from safetensors.torch import save_file

    from mrpc_check.pipeline.batching import make_collator, make_eval_loader, make_train_loader
    from mrpc_check.pipeline.config import make_config
    from mrpc_check.pipeline.evaluation import load_metric
    from mrpc_check.pipeline.model import build_optimizer, load_tokenizer, resolve_checkpoint
    from mrpc_check.testing import make_tiny_model, synthetic_mrpc
    from mrpc_check.pipeline.tokenize import tokenize_dataset
    from mrpc_check.pipeline.train_accelerate import make_accelerator, train_accelerate

    out = Path(out_dir)
    tokenizer = load_tokenizer(resolve_checkpoint("minilm"))
    data = tokenize_dataset(synthetic_mrpc(32, 13, seed=4), tokenizer, max_length=40)
    collator = make_collator(tokenizer)
    cfg = make_config(device="cpu", batch_size=4, eval_batch_size=4, grad_accum=accum, epochs=2, lr=1e-3)

    model = make_tiny_model(len(tokenizer), seed=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    optimizer = build_optimizer(model, cfg.lr)
    train_loader = make_train_loader(data["train"], collator, cfg.batch_size, cfg.seed)
    eval_loader = make_eval_loader(data["validation"], collator, cfg.eval_batch_size)
    accelerator = make_accelerator(cfg)
    result = train_accelerate(model, optimizer, train_loader, eval_loader, cfg, load_metric(), accelerator)

    # Which validation examples reach the metric, and how often: labels carry the example index here.
    indexed = data["validation"].remove_columns("labels").add_column("labels", list(range(len(data["validation"]))))
    indexed.set_format("torch")
    seen_loader = accelerator.prepare(make_eval_loader(indexed, collator, cfg.eval_batch_size))
    seen = torch.cat([accelerator.gather_for_metrics(batch["labels"]) for batch in seen_loader]).tolist()

    if result.main_process:
        state = {k: v.detach().cpu().contiguous() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        save_file(state, str(out / "weights.safetensors"))
        (out / "result.json").write_text(json.dumps({
            "num_processes": accelerator.num_processes,
            "final_lr": result.final_lr,
            "optimizer_steps": result.optimizer_steps,
            "train_samples": result.train_samples,
            "metrics": result.final_metrics,
            "seen": seen,
        }))
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
