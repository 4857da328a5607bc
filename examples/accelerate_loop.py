"""A user's Accelerate loop with gradient accumulation, and the adapter that puts it under the battery.

    mrpc-check verify --loop examples/accelerate_loop.py:adapter
    mrpc-check verify --loop examples/accelerate_loop.py:adapter --distributed     # + the 2-process checks

Accelerate's own idiom, ``with accelerator.accumulate(model): accelerator.backward(loss)``, divides
every micro-batch's mean loss by the accumulation steps: exact for groups of equal micro-batches,
off for each epoch's last group when it holds a short micro-batch (the battery warns). This loop
counts each group's examples first and weights every micro-batch by its share, so every step's
gradient is the mean over its group's examples: it passes with no warning.
"""

import contextlib
import math

import torch
from torch.utils.data import DataLoader


def groups_of(loader, size):
    """Consecutive lists of `size` micro-batches; the epoch's last list may be shorter."""
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def train(model, train_dataset, eval_dataset, collator, *, epochs, batch_size, lr, accum=1, warmup=0.0,
          weight_decay=0.0, max_grad_norm=None, seed=0, eval_batch_size=32, cpu=True):
    """Fine-tune ``model`` with Accelerate; return the last evaluation's predicted classes, in dataset order."""
    from accelerate import Accelerator
    from transformers import get_scheduler, set_seed

    set_seed(seed)
    accelerator = Accelerator(cpu=cpu)
    loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True, collate_fn=collator,
                        generator=torch.Generator().manual_seed(seed))
    eval_loader = DataLoader(eval_dataset, batch_size=eval_batch_size, collate_fn=collator)
    # Decay the weight matrices only: biases and LayerNorm gains are exempt, as in BERT's recipe.
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    model, optimizer, loader, eval_loader = accelerator.prepare(model, optimizer, loader, eval_loader)
    # Sized after prepare, from the loader each process iterates: on N processes it is N times shorter.
    steps = math.ceil(len(loader) / accum) * epochs
    warmup_steps = warmup if isinstance(warmup, int) else math.ceil(steps * warmup)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=warmup_steps, num_training_steps=steps)
    predictions = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        model.train()
        for group in groups_of(loader, accum):
            examples = sum(len(b["labels"]) for b in group)  # the group's size, short last group included
            for i, batch in enumerate(group):
                # Gradients are all-reduced once per group, at its last micro-batch.
                with accelerator.no_sync(model) if i < len(group) - 1 else contextlib.nullcontext():
                    accelerator.backward(model(**batch).loss * len(batch["labels"]) / examples)
            if max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        model.eval()
        predictions = []
        with torch.no_grad():
            for batch in eval_loader:
                # gather_for_metrics drops the duplicates that even out the last batch across processes
                predictions += accelerator.gather_for_metrics(model(**batch).logits.argmax(-1)).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    """The battery's contract: train as `recipe` says, return the evaluation predictions."""
    return train(model, train_dataset, eval_dataset, collator, epochs=recipe.epochs, batch_size=recipe.batch_size,
                 lr=recipe.lr, accum=recipe.grad_accum, warmup=recipe.warmup_steps or recipe.warmup_ratio,
                 weight_decay=recipe.weight_decay, max_grad_norm=recipe.max_grad_norm, seed=recipe.seed,
                 eval_batch_size=recipe.eval_batch_size, cpu=recipe.device == "cpu")


adapter.distributed = True  # runs unchanged under torchrun / accelerate launch
