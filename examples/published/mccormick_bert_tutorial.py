"""Chris McCormick and Nick Ryan's "BERT Fine-Tuning Tutorial with PyTorch", its training loop re-created.

Source: mccormickml.com/2019/07/22/BERT-fine-tuning (revised 2020-03-20; also a Colab notebook), one of
the most copied BERT fine-tuning loops. Data and model injected; its behaviours, in this project's own code:

* ``AdamW(model.parameters(), lr=2e-5, eps=1e-8)`` from transformers, whose weight decay defaulted to
  0.0; ``transformers.AdamW`` is gone from transformers 5, and the replacement every reader makes,
  ``torch.optim.AdamW``, defaults to ``weight_decay=0.01``;
* ``get_linear_schedule_with_warmup(num_warmup_steps=0, num_training_steps=len(loader) * epochs)``,
  stepped after every optimizer step; no accumulation;
* per batch: ``model.zero_grad()``, the model's own loss (labels passed), ``loss.backward()``,
  **``torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)``** whatever else is configured (the
  "to help prevent the exploding gradients problem" line), ``optimizer.step()``, ``scheduler.step()``;
* ``RandomSampler`` for training, ``SequentialSampler`` for validation; ``model.train()`` at the start of
  every epoch, validation after every epoch in ``model.eval()`` under ``no_grad`` (with labels, for
  its validation loss); seeds 42 for ``random``, ``numpy`` and ``torch`` (the adapter passes the recipe's).
"""

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from transformers import get_linear_schedule_with_warmup


def train(model, train_dataset, validation_dataset, collator, *, epochs=4, batch_size=32, lr=2e-5, seed_val=42, device="cpu"):
    random.seed(seed_val)
    np.random.seed(seed_val)
    torch.manual_seed(seed_val)
    train_dataloader = DataLoader(train_dataset, sampler=RandomSampler(train_dataset), batch_size=batch_size, collate_fn=collator)
    validation_dataloader = DataLoader(validation_dataset, sampler=SequentialSampler(validation_dataset), batch_size=batch_size,
                                       collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, eps=1e-8)
    total_steps = len(train_dataloader) * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=total_steps)
    model.to(device)
    predictions = []
    for _ in range(epochs):
        model.train()
        for batch in train_dataloader:
            batch = {k: v.to(device) for k, v in batch.items()}
            model.zero_grad()
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
        model.eval()
        predictions = []
        for batch in validation_dataloader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.no_grad():
                logits = model(**batch).logits
            predictions += logits.argmax(-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    return train(model, train_dataset, eval_dataset, collator, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                 seed_val=recipe.seed, device=recipe.device)


# No accumulation, no warmup, no weight decay of its own, fp32: declared. The clip is not a recipe feature it
# implements (it ignores recipe.max_grad_norm) but an extra fixed in the loop, which the battery names.
adapter.supports = set()

EXPECTED = {
    "optimizer": "fail",  # torch.optim.AdamW's default weight_decay 0.01 (transformers.AdamW's was 0.0), recipe 0.0
    "clipping": "warn",  # clips at a fixed 1.0 though the recipe has no clipping (bound at some steps of the tiny model)
    "grouping": "skip", "accumulation": "skip",  # declared: no accumulation
    "resume": "skip",
}
# The effective recipe the battery must infer (tests/checks/test_effective.py): the clip's norm, and nothing frozen.
EFFECTIVE = {"clip_norm": 1.0, "frozen": (), "label_smoothing": 0.0, "warmup": 0}
