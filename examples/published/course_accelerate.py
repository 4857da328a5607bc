"""The course walkthrough's Accelerate loop, re-created as a user runs it under the battery.

Source: the classic Hugging Face course walkthrough, "Accelerate-Enhanced Training" (this project's
../shared/reference/walkthrough.md; course chapter 3, "A full training", "Supercharge your training
loop with Accelerate"), with ``torch.optim.AdamW`` for the removed ``transformers.AdamW``.

Behaviours reproduced:
* the scheduler is built *before* ``accelerator.prepare`` from the unprepared loader
  (``num_training_steps = epochs * len(train_dataloader)``) and is not passed to ``prepare``: on
  2 processes each process iterates half the batches, so the rate ends at half the peak;
* ``prepare(train_dl, eval_dl, model, optimizer)``, ``accelerator.backward(loss)``, then
  ``optimizer.step(); lr_scheduler.step(); optimizer.zero_grad()`` per batch;
* ``AdamW(model.parameters(), lr=...)``: torch's default weight decay 0.01;
* no warmup, accumulation, clipping or mixed precision; ``model.train()`` once;
* evaluation: the walkthrough shows none under Accelerate; this one uses Accelerate's documented
  idiom (``gather_for_metrics`` over the prepared evaluation loader), once after training.
"""

import torch
from torch.utils.data import DataLoader
from transformers import get_scheduler


def train_and_evaluate(model, train_dataset, eval_dataset, collator, *, batch_size, lr, num_epochs, cpu=True):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=cpu)
    train_dataloader = DataLoader(train_dataset, shuffle=True, batch_size=batch_size, collate_fn=collator)
    eval_dataloader = DataLoader(eval_dataset, batch_size=batch_size, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    num_training_steps = num_epochs * len(train_dataloader)  # the unprepared loader: the walkthrough's order
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)
    train_dl, eval_dl, model, optimizer = accelerator.prepare(train_dataloader, eval_dataloader, model, optimizer)

    model.train()
    for _ in range(num_epochs):
        for batch in train_dl:
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()

    model.eval()
    predictions = []
    for batch in eval_dl:
        with torch.no_grad():
            logits = model(**batch).logits
        predictions += accelerator.gather_for_metrics(logits.argmax(dim=-1)).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    from transformers import set_seed

    set_seed(recipe.seed)
    return train_and_evaluate(model, train_dataset, eval_dataset, collator, batch_size=recipe.batch_size, lr=recipe.lr,
                              num_epochs=recipe.epochs, cpu=recipe.device == "cpu")


adapter.supports = {"distributed"}  # runs under accelerate launch; none of the optional recipe features

EXPECTED = {
    "optimizer": "fail",  # torch's default weight decay 0.01
    "grouping": "skip", "accumulation": "skip", "clipping": "skip", "resume": "skip",
}
# On 2 processes (verify --distributed): the walkthrough's own bug, the schedule sized before prepare.
EXPECTED_2PROC = {"process_group": "pass", "schedule_2proc": "fail"}
SCHEDULE_2PROC_NAMES = ("before accelerator.prepare",)
# The effective recipe the battery must infer (tests/checks/test_published.py).
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 0}
