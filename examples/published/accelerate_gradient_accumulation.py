"""Accelerate's official accumulation example, ``examples/by_feature/gradient_accumulation.py``, re-created.

Source: huggingface/accelerate, examples/by_feature/gradient_accumulation.py (main at 16cb6eb,
2026-07-24, version 1.15.0.dev0). Data, model and metric injected; the behaviours, in this project's
own code:

* ``Accelerator(gradient_accumulation_steps=accum)`` and, per micro-batch, ``with
  accelerator.accumulate(model): backward; optimizer.step(); lr_scheduler.step(); optimizer.zero_grad()``
  (Accelerate makes the step a no-op until a group is complete, and at the loader's end);
* ``accelerator.backward`` divides every micro-batch's mean loss by ``accum``: each epoch's short last
  group (a short micro-batch) is weighted like full ones;
* ``get_linear_schedule_with_warmup(num_warmup_steps=100, num_training_steps=len(loader) * epochs)``
  passed to ``prepare``: sized in micro-batches, while the prepared scheduler advances once per
  *optimizer* step, so the rate never reaches 0 (at accumulation 2 it ends at half the peak); the
  fixed 100-step warmup is set to the recipe's neutral 0 (no warmup option: declared absent);
* ``DataLoader(shuffle=True)`` without ``drop_last``; torch ``AdamW(params=model.parameters(), lr=lr)``
  (weight decay 0.01 by default); no clipping; evaluation every epoch with ``gather_for_metrics``.
"""

import torch
from torch.utils.data import DataLoader

WARMUP_STEPS = 100  # the script's constant


def training_function(model, train_dataset, eval_dataset, collator, config, *, gradient_accumulation_steps=1, cpu=True,
                      warmup_steps=WARMUP_STEPS):
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup, set_seed

    accelerator = Accelerator(cpu=cpu, gradient_accumulation_steps=gradient_accumulation_steps)
    set_seed(int(config["seed"]))
    train_dataloader = DataLoader(train_dataset, shuffle=True, collate_fn=collator, batch_size=int(config["batch_size"]))
    eval_dataloader = DataLoader(eval_dataset, shuffle=False, collate_fn=collator, batch_size=config["eval_batch_size"])
    model = model.to(accelerator.device)
    optimizer = torch.optim.AdamW(params=model.parameters(), lr=config["lr"])
    num_epochs = int(config["num_epochs"])
    lr_scheduler = get_linear_schedule_with_warmup(optimizer=optimizer, num_warmup_steps=warmup_steps,
                                                   num_training_steps=len(train_dataloader) * num_epochs)
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler)

    predictions = []
    for _ in range(num_epochs):
        model.train()
        for batch in train_dataloader:
            with accelerator.accumulate(model):
                accelerator.backward(model(**batch).loss)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
        model.eval()
        predictions = []
        for batch in eval_dataloader:
            with torch.no_grad():
                logits = model(**batch).logits
            predictions += accelerator.gather_for_metrics(logits.argmax(dim=-1)).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    config = {"lr": recipe.lr, "num_epochs": recipe.epochs, "seed": recipe.seed, "batch_size": recipe.batch_size,
              "eval_batch_size": recipe.eval_batch_size}
    return training_function(model, train_dataset, eval_dataset, collator, config,
                             gradient_accumulation_steps=recipe.grad_accum, cpu=recipe.device == "cpu",
                             warmup_steps=recipe.warmup_steps)


adapter.supports = {"grad_accum"}

EXPECTED = {
    "schedule": "fail",  # sized for 12 micro-batches, 6 optimizer steps taken: ends at half the peak
    "accumulation": "warn",  # accelerator.backward's loss / accum: each epoch's short last group mis-weighted
    "optimizer": "fail",  # torch's default weight decay 0.01
    "clipping": "skip", "resume": "skip",
}
# The effective recipe the battery must infer (tests/checks/test_published.py): the schedule sized in micro-batches.
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 0, "total": 12}
