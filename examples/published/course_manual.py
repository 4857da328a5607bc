"""The course walkthrough's manual loop, re-created as a user runs it under the battery.

Source: the classic Hugging Face course walkthrough, "Manual Training Loop" and "Evaluation"
(this project's ../shared/reference/walkthrough.md; course chapter 3, "A full training"), as printed,
except that ``transformers.AdamW`` (gone from transformers 5) becomes ``torch.optim.AdamW``, the
replacement every user of the walkthrough now makes.

Behaviours reproduced:
* optimizer: ``AdamW(model.parameters(), lr=...)`` with no ``weight_decay``: torch's default 0.01
  decays every tensor (``transformers.AdamW`` defaulted to 0.0);
* schedule: linear, ``num_warmup_steps=0``, ``num_training_steps = epochs * len(loader)``, stepped
  after every optimizer step; no accumulation, no clipping, no mixed precision;
* batches: ``DataLoader(shuffle=True)``, the short last batch kept;
* ``model.train()`` once before the epochs; one evaluation after training, ``model.eval()`` and ``no_grad``;
* seeding: the walkthrough seeds nothing; the adapter seeds torch from the recipe, as a user's
  script would before building the loaders.
"""

import torch
from torch.utils.data import DataLoader
from transformers import get_scheduler


def train_and_evaluate(model, train_dataset, eval_dataset, collator, *, batch_size, lr, num_epochs, device="cpu"):
    train_dataloader = DataLoader(train_dataset, shuffle=True, batch_size=batch_size, collate_fn=collator)
    eval_dataloader = DataLoader(eval_dataset, batch_size=batch_size, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    num_training_steps = num_epochs * len(train_dataloader)
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)

    model.to(device)
    model.train()
    for _ in range(num_epochs):
        for batch in train_dataloader:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()

    model.eval()
    predictions = []
    for batch in eval_dataloader:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad():
            logits = model(**batch).logits
        predictions += torch.argmax(logits, dim=-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    torch.manual_seed(recipe.seed)
    return train_and_evaluate(model, train_dataset, eval_dataset, collator, batch_size=recipe.batch_size, lr=recipe.lr,
                              num_epochs=recipe.epochs, device=recipe.device)


# The loop has none of the recipe's optional features: declared, so the battery runs it without them.
adapter.supports = set()

# What reading the walkthrough predicts (every check not named passes; mixed_precision skips without CUDA).
EXPECTED = {
    "optimizer": "fail",  # torch.optim.AdamW's default weight_decay 0.01, recipe 0.0
    "grouping": "skip", "accumulation": "skip", "clipping": "skip",  # declared: no accumulation, no clipping
    "resume": "skip",  # no checkpoints
}
# The effective recipe the battery must infer (tests/checks/test_published.py).
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 0}
