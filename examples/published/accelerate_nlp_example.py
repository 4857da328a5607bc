"""Accelerate's official MRPC example, ``examples/nlp_example.py``, re-created as a user runs it under the battery.

Source: huggingface/accelerate, examples/nlp_example.py (main at 16cb6eb, 2026-07-24, version
1.15.0.dev0; the same loop since the 0.x releases). Its data, model and metric are injected (the
battery's); everything below is the script's behaviour, in this project's own code:

* training loader ``DataLoader(shuffle=True, drop_last=True)``: each epoch's incomplete last batch is skipped;
* accumulation only when the asked batch exceeds ``MAX_GPU_BATCH_SIZE`` (16 in the script):
  ``gradient_accumulation_steps = batch_size // MAX_GPU_BATCH_SIZE``; the adapter sets that limit to the
  recipe's micro-batch, so the script accumulates ``grad_accum`` micro-batches as its authors meant;
* ``loss = loss / gradient_accumulation_steps``, and ``if step % gradient_accumulation_steps == 0:`` step,
  schedule, zero_grad, with ``step`` counted from 0 in each epoch: the first step of every epoch takes one
  micro-batch (harmless at the script's defaults, where accumulation is 1);
* ``get_linear_schedule_with_warmup(num_warmup_steps=100, num_training_steps=len(loader) * epochs //
  accum)``, passed to ``prepare``: the floor sizes the schedule one step short when an epoch ends in a
  short group; the fixed 100-step warmup is the script's constant, set to the recipe's neutral 0 here
  (the script has no warmup option: ``warmup`` is declared absent);
* ``AdamW(params=model.parameters(), lr=lr)`` from torch: default weight decay 0.01; no clipping;
* ``set_seed(seed)``; ``model.train()`` each epoch; evaluation every epoch with ``gather_for_metrics``.
"""

import torch
from torch.utils.data import DataLoader

MAX_GPU_BATCH_SIZE = 16
WARMUP_STEPS = 100  # the script's constant


def training_function(model, train_dataset, eval_dataset, collator, config, *, cpu=True, max_gpu_batch_size=MAX_GPU_BATCH_SIZE,
                      warmup_steps=WARMUP_STEPS):
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup, set_seed

    accelerator = Accelerator(cpu=cpu)
    lr, num_epochs, seed, batch_size = config["lr"], int(config["num_epochs"]), int(config["seed"]), int(config["batch_size"])
    gradient_accumulation_steps = 1
    if batch_size > max_gpu_batch_size:
        gradient_accumulation_steps = batch_size // max_gpu_batch_size
        batch_size = max_gpu_batch_size
    set_seed(seed)
    train_dataloader = DataLoader(train_dataset, shuffle=True, collate_fn=collator, batch_size=batch_size, drop_last=True)
    eval_dataloader = DataLoader(eval_dataset, shuffle=False, collate_fn=collator, batch_size=config["eval_batch_size"])
    model = model.to(accelerator.device)
    optimizer = torch.optim.AdamW(params=model.parameters(), lr=lr)
    lr_scheduler = get_linear_schedule_with_warmup(
        optimizer=optimizer, num_warmup_steps=warmup_steps,
        num_training_steps=(len(train_dataloader) * num_epochs) // gradient_accumulation_steps)
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler)

    predictions = []
    for _ in range(num_epochs):
        model.train()
        for step, batch in enumerate(train_dataloader):
            loss = model(**batch).loss / gradient_accumulation_steps
            accelerator.backward(loss)
            if step % gradient_accumulation_steps == 0:
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
    config = {"lr": recipe.lr, "num_epochs": recipe.epochs, "seed": recipe.seed,
              "batch_size": recipe.batch_size * recipe.grad_accum, "eval_batch_size": recipe.eval_batch_size}
    return training_function(model, train_dataset, eval_dataset, collator, config, cpu=recipe.device == "cpu",
                             max_gpu_batch_size=recipe.batch_size, warmup_steps=recipe.warmup_steps)


adapter.supports = {"grad_accum"}  # accumulates (its own way); no warmup option, no clipping, no decay option

EXPECTED = {
    "coverage": "warn",  # drop_last=True: the short last batch of every epoch is never trained on
    "grouping": "fail",  # `step % accum == 0`: every epoch's first step takes one micro-batch
    "schedule": "fail",  # len(loader) * epochs // accum floors: sized for 5 steps, 6 taken
    "optimizer": "fail",  # torch's default weight decay 0.01
    "accumulation": "skip",  # not judged while grouping fails (its loss / accum would be read on misaligned groups)
    "clipping": "skip", "resume": "skip",
}
# The effective recipe the battery must infer (tests/checks/test_published.py): the schedule sized len(loader) * epochs // accum.
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 0, "total": 5}
