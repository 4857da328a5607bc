"""The schedule-free optimizer's README loop (AdamWScheduleFree), on the walkthrough's data and model.

Source: facebookresearch/schedule_free, ``README.md`` ("How to use"): no lr scheduler at all; warmup through the
optimizer's own ``warmup_steps``; ``optimizer.train()`` at the start of training and ``optimizer.eval()`` before
evaluating (and saving), because the weights a step trains on are not the ones to evaluate: ``eval()`` swaps
in the averaged sequence. The training loop around it is the course walkthrough's.

Behaviours reproduced: ``schedulefree.AdamWScheduleFree(model.parameters(), lr=lr, warmup_steps=warmup)`` (its
default weight decay 0); no scheduler object; the model's own loss, no accumulation, no clipping; one
evaluation after training in ``model.eval()`` and ``optimizer.eval()`` under ``no_grad``.

Expected: ``schedule`` fails, naming what it is (no lr scheduler: the rate stays at its peak after the
optimizer's warmup; the fix: a linear scheduler, or ``adapter.extras = {'schedule': 'constant'}``);
``outside_updates`` warns on ``optimizer.eval()``'s swap, which the results are then computed on.
"""

import math

import schedulefree
import torch
from torch.utils.data import DataLoader


def train_and_evaluate(model, train_dataset, eval_dataset, collator, *, batch_size, lr, num_epochs, warmup_steps):
    train_dataloader = DataLoader(train_dataset, shuffle=True, batch_size=batch_size, collate_fn=collator)
    eval_dataloader = DataLoader(eval_dataset, batch_size=batch_size, collate_fn=collator)
    optimizer = schedulefree.AdamWScheduleFree(model.parameters(), lr=lr, warmup_steps=warmup_steps)
    for _ in range(num_epochs):
        model.train()
        optimizer.train()
        for batch in train_dataloader:
            optimizer.zero_grad()
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
    model.eval()
    optimizer.eval()
    predictions = []
    with torch.no_grad():
        for batch in eval_dataloader:
            predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    torch.manual_seed(recipe.seed)
    steps = math.ceil(len(train_dataset) / recipe.batch_size) * recipe.epochs
    warmup = recipe.warmup_steps or math.ceil(recipe.warmup_ratio * steps)
    return train_and_evaluate(model, train_dataset, eval_dataset, collator, batch_size=recipe.batch_size, lr=recipe.lr,
                              num_epochs=recipe.epochs, warmup_steps=warmup)


adapter.supports = {"warmup"}

EXPECTED = {
    "schedule": "fail",  # no lr scheduler: constant at the peak after the optimizer's warmup
    "outside_updates": "warn",  # optimizer.eval() swaps in the average before evaluation
    "grouping": "skip", "accumulation": "skip", "clipping": "skip", "resume": "skip",  # declared
}
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 2}
