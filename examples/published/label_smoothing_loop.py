"""The course walkthrough's manual loop with a label-smoothed cross-entropy, as tutorials add it.

Source: a composite, said as such. The loop is the course walkthrough's "Manual Training Loop"
(this project's ../shared/reference/walkthrough.md; course chapter 3); the one change is the
criterion many fine-tuning posts and Kaggle notebooks put in place of the model's own loss since
PyTorch 1.10 added the argument: ``criterion = nn.CrossEntropyLoss(label_smoothing=0.1)`` applied to
``outputs.logits`` with the labels popped from the batch (the regularizer of Szegedy et al. 2016,
"Rethinking the Inception Architecture", studied by Mueller et al. 2019, "When does label smoothing help?").

Behaviours reproduced:
* ``torch.optim.AdamW(model.parameters(), lr=...)``: torch's default weight decay 0.01 (the recipe says 0);
* linear schedule without warmup over ``epochs * len(loader)``, stepped after every optimizer step;
* ``labels = batch.pop("labels")``; ``loss = criterion(model(**batch).logits, labels)``: the model gets no
  labels and returns no loss; the loop's loss smooths the targets to (0.95, 0.05);
* one evaluation after training in ``model.eval()`` under ``no_grad``.
"""

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import get_scheduler


def train_and_evaluate(model, train_dataset, eval_dataset, collator, *, batch_size, lr, num_epochs, device="cpu"):
    train_dataloader = DataLoader(train_dataset, shuffle=True, batch_size=batch_size, collate_fn=collator)
    eval_dataloader = DataLoader(eval_dataset, batch_size=batch_size, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    num_training_steps = num_epochs * len(train_dataloader)
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)

    model.to(device)
    model.train()
    for _ in range(num_epochs):
        for batch in train_dataloader:
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            loss = criterion(model(**batch).logits, labels)
            loss.backward()
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()

    model.eval()
    predictions = []
    for batch in eval_dataloader:
        batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    torch.manual_seed(recipe.seed)
    return train_and_evaluate(model, train_dataset, eval_dataset, collator, batch_size=recipe.batch_size, lr=recipe.lr,
                              num_epochs=recipe.epochs, device=recipe.device)


adapter.supports = set()

EXPECTED = {
    "optimizer": "fail",  # torch's default weight decay 0.01
    "loss": "warn",  # label smoothing 0.1, read off the gradient the loss sends into the logits
    "grouping": "skip", "accumulation": "skip", "clipping": "skip",  # declared: no accumulation, no clipping
    "resume": "skip",
}
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.1, "warmup": 0}
