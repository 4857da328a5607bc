"""A user's own fine-tuning loop, and the adapter that puts it under mrpc_check's battery.

    mrpc-check verify --loop examples/my_loop.py:adapter
    pytest --pyargs mrpc_check.checks --mrpc-loop examples/my_loop.py:adapter

`train` is an ordinary loop (the course walkthrough's, with evaluation after each epoch and
gradient accumulation); `adapter` is all the battery needs: it maps the battery's recipe onto
the loop's arguments and returns the evaluation predictions.
"""

import math

import torch
from torch.utils.data import DataLoader
from transformers import get_scheduler


def train(model, train_dataset, eval_dataset, collator, *, epochs, batch_size, lr, accum=1, warmup=0.0,
          weight_decay=0.0, max_grad_norm=None, seed=0, eval_batch_size=32):
    """Fine-tune ``model``; return the last evaluation's predicted classes, in dataset order."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # a new shuffle each epoch, the same for the same seed
    loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True, collate_fn=collator, generator=generator)
    eval_loader = DataLoader(eval_dataset, batch_size=eval_batch_size, collate_fn=collator)
    # Decay the weight matrices only: biases and LayerNorm gains are exempt, as in BERT's recipe.
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps = math.ceil(len(loader) / accum) * epochs  # a short last group still steps
    warmup_steps = warmup if isinstance(warmup, int) else math.ceil(steps * warmup)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=warmup_steps, num_training_steps=steps)
    predictions = []
    for epoch in range(epochs):
        model.train()
        batches = list(loader)
        for start in range(0, len(batches), accum):
            group = batches[start : start + accum]
            examples = sum(len(b["labels"]) for b in group)
            for batch in group:
                # weight by size: the step's gradient is the mean over the group's examples
                (model(**batch).loss * len(batch["labels"]) / examples).backward()
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        model.eval()
        predictions = []
        with torch.no_grad():
            for batch in eval_loader:
                predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    """The battery's contract: train as `recipe` says, return the evaluation predictions."""
    return train(model, train_dataset, eval_dataset, collator, epochs=recipe.epochs, batch_size=recipe.batch_size,
                 lr=recipe.lr, accum=recipe.grad_accum, warmup=recipe.warmup_steps or recipe.warmup_ratio,
                 weight_decay=recipe.weight_decay, max_grad_norm=recipe.max_grad_norm, seed=recipe.seed,
                 eval_batch_size=recipe.eval_batch_size)
