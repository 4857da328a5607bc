"""Early stopping on a validation split carved from the training rows, with the best checkpoint reloaded at the end.

Source: Bjarten/early-stopping-pytorch (``EarlyStopping`` in ``early_stopping_pytorch/early_stopping.py`` and the
``MNIST_Early_Stopping_example`` notebook): 20 % of the training rows held out as a validation set
(``valid_size = 0.2``, indices shuffled, two ``SubsetRandomSampler``\\ s over the same training set); after every
epoch the validation loss in ``model.eval()``; a checkpoint ``torch.save(model.state_dict(), path)`` whenever it
improves by more than ``delta``; training stops after ``patience`` epochs without improvement (default 7); after
the loop ``model.load_state_dict(torch.load(path))`` brings back the best epoch. The loop around it is the course
walkthrough's manual loop (its torch AdamW, its linear schedule over the epochs asked for).

Behaviours reproduced: the split (seeded here from the recipe, as a reproducible script does), the epoch-wise
validation loss averaged over batches, the tutorial's ``EarlyStopping`` logic (improvement resets the counter;
``patience`` epochs without one stop the loop), the reload of the best checkpoint, then predictions on the
evaluation rows.

Expected: ``coverage`` warns: a fifth of the training rows is never trained on and is evaluated after every epoch,
the loop's own validation split (``adapter.extras = {'held_out': 0.2}`` declares it); those passes are not
"evaluating on the train split". The label control is not judged: on permuted labels the held-out loss only
worsens, so the loop stops after ``patience`` epochs and reloads an early checkpoint. ``outside_updates`` would warn
where the reloaded checkpoint is not the last epoch's (at the battery's 2 epochs it is, so it passes);
``optimizer`` fails on torch's default decay, as on the walkthrough's own loop.
"""

import os
import tempfile

import numpy as np
import torch
from torch.utils.data import DataLoader, SubsetRandomSampler
from transformers import get_scheduler


class EarlyStopping:
    """Stop after ``patience`` epochs whose validation loss did not improve on the best by more than ``delta``;
    save the model each time it does."""

    def __init__(self, patience=7, delta=0.0, path="checkpoint.pt"):
        self.patience, self.delta, self.path = patience, delta, path
        self.best, self.counter, self.early_stop = None, 0, False

    def __call__(self, val_loss, model):
        if np.isnan(val_loss):
            return
        if self.best is None or val_loss < self.best - self.delta:
            self.best, self.counter = val_loss, 0
            torch.save(model.state_dict(), self.path)
        else:
            self.counter += 1
            self.early_stop = self.counter >= self.patience


def train_with_early_stopping(model, train_dataset, eval_dataset, collator, *, batch_size, lr, num_epochs, seed,
                              valid_size=0.2, patience=7, checkpoint="checkpoint.pt"):
    indices = list(range(len(train_dataset)))
    np.random.default_rng(seed).shuffle(indices)
    split = int(np.floor(valid_size * len(indices)))
    train_idx, valid_idx = indices[split:], indices[:split]
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_dataset, batch_size=batch_size, sampler=SubsetRandomSampler(train_idx, generator),
                              collate_fn=collator)
    valid_loader = DataLoader(train_dataset, batch_size=batch_size, sampler=SubsetRandomSampler(valid_idx, generator),
                              collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0,
                                 num_training_steps=num_epochs * len(train_loader))
    early_stopping = EarlyStopping(patience=patience, path=checkpoint)
    for _ in range(num_epochs):
        model.train()
        for batch in train_loader:
            optimizer.zero_grad()
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            lr_scheduler.step()
        model.eval()
        with torch.no_grad():
            valid_losses = [model(**batch).loss.item() for batch in valid_loader]
        early_stopping(float(np.average(valid_losses)), model)
        if early_stopping.early_stop:
            break
    model.load_state_dict(torch.load(checkpoint))
    model.eval()
    predictions = []
    with torch.no_grad():
        for batch in DataLoader(eval_dataset, batch_size=batch_size, collate_fn=collator):
            predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    torch.manual_seed(recipe.seed)
    with tempfile.TemporaryDirectory() as folder:
        return train_with_early_stopping(model, train_dataset, eval_dataset, collator, batch_size=recipe.batch_size,
                                         lr=recipe.lr, num_epochs=recipe.epochs, seed=recipe.seed,
                                         checkpoint=os.path.join(folder, "checkpoint.pt"))


adapter.supports = set()

EXPECTED = {
    "coverage": "warn",  # valid_size = 0.2: a fifth of the training rows never trained on (declarable: held_out)
    "optimizer": "fail",  # torch.optim.AdamW's default weight_decay 0.01, recipe 0.0
    "label_control": "skip",  # the early stop on the held-out rows cuts the control's long run short
    "grouping": "skip", "accumulation": "skip", "clipping": "skip", "resume": "skip",  # declared
}
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 0}
