"""A selective layer-freezing fine-tuning tutorial, its freezing re-created on the walkthrough's loop.

Source: "Fine-Tuning a BERT Model with Selective Layer Freezing" (skillcurb.com, generative-AI lecture 15),
a typical published recipe: every parameter whose name contains none of the last two encoder blocks,
``pooler`` or ``classifier`` gets ``requires_grad = False`` before training (there with
``trainable_layers = ["encoder.layer.10", "encoder.layer.11", "pooler", "classifier"]`` on
bert-base-uncased's 12 blocks). Here the last two blocks are named from ``config.num_hidden_layers``,
as the same rule reads on any depth: on the battery's tiny 2-block BERT that freezes exactly
``bert.embeddings``. The tutorial then trains with ``Trainer``; the training is replaced by the
course walkthrough's manual loop so that the freezing is the one thing this file adds to
``course_manual.py``.

Behaviours reproduced:
* freezing by name before the optimizer is built; ``AdamW(model.parameters(), lr=...)`` (frozen tensors in
  the optimizer get no gradient, so they are skipped); torch's default weight decay 0.01;
* linear schedule without warmup over ``epochs * len(loader)``, the model's own loss, no accumulation,
  no clipping; one evaluation after training in ``model.eval()`` under ``no_grad``.
"""

import torch
from torch.utils.data import DataLoader
from transformers import get_scheduler


def freeze_all_but_top(model):
    depth = model.config.num_hidden_layers
    trainable_layers = [f"encoder.layer.{depth - 2}.", f"encoder.layer.{depth - 1}.", "pooler", "classifier"]
    for name, param in model.named_parameters():
        param.requires_grad = any(layer in name for layer in trainable_layers)


def train_and_evaluate(model, train_dataset, eval_dataset, collator, *, batch_size, lr, num_epochs, device="cpu"):
    freeze_all_but_top(model)
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
            predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    torch.manual_seed(recipe.seed)
    return train_and_evaluate(model, train_dataset, eval_dataset, collator, batch_size=recipe.batch_size, lr=recipe.lr,
                              num_epochs=recipe.epochs, device=recipe.device)


adapter.supports = set()

EXPECTED = {
    "optimizer": "fail",  # torch's default weight decay 0.01
    "frozen": "warn",  # bert.embeddings frozen by the loop (requires_grad=False), a choice the recipe never made
    "grouping": "skip", "accumulation": "skip", "clipping": "skip",  # declared
    "resume": "skip",
}
EFFECTIVE = {"clip_norm": None, "frozen": ("bert.embeddings",), "label_smoothing": 0.0, "warmup": 0}
