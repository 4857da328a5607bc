"""Lightning's GLUE fine-tuning tutorial on MRPC, its LightningModule re-created for the battery.

Source: Lightning-AI/tutorials, ``lightning_examples/text-transformers/notebook.py`` ("Finetune Transformers Models
with PyTorch Lightning": a ``GLUETransformer`` LightningModule and a ``GLUEDataModule``, MRPC among its tasks, trained
by ``pl.Trainer(max_epochs=1, accelerator="auto", devices=1)``). What it does, reproduced here:

* ``training_step`` returns the model's own loss (``outputs[0]``); Lightning runs it inside a closure that
  ``optimizer.step`` calls, zeroes the gradients itself, and steps the scheduler;
* ``configure_optimizers``: AdamW over two groups, the hyper-parameter ``weight_decay`` on every tensor but biases
  and ``LayerNorm.weight``, 0 on those; ``eps`` 1e-8 (the tutorial's ``transformers.AdamW``, gone from
  transformers: torch's AdamW here, the same update); ``get_linear_schedule_with_warmup(num_warmup_steps=warmup_steps,
  num_training_steps=self.trainer.estimated_stepping_batches)`` returned with ``"interval": "step"``;
* ``validation_step`` computes the argmax per batch and ``on_validation_epoch_end`` the GLUE metric (scikit-learn's
  here: the tutorial's ``datasets.load_metric`` is gone too); the validation loop runs after each epoch, and twice
  in Lightning's sanity check before training: evaluation forwards, never training;
* no clipping and no accumulation in the tutorial's Trainer: the recipe's reach it as Trainer flags
  (``gradient_clip_val``, ``accumulate_grad_batches``) through :func:`mrpc_check.checks.lightning_adapter`; its
  warmup is in steps only (the adapter turns a ratio into steps, as a user of the tutorial would).

The tutorial's data module pads every row to 128 tokens (``pad_to_max_length``); the battery's collator pads
each batch to its longest row, which the model cannot tell apart (the padding check's own relation).

Expected, on Lightning 2.6: ``modes`` fails. ``from_pretrained`` hands the model over in eval mode and Lightning's
Trainer no longer switches the LightningModule to train mode at the start of fit (it only warns "Found N module(s) in
eval mode at the start of training"), so the tutorial fine-tunes with dropout off; the fix is
``self.model.train()`` after ``from_pretrained`` in ``__init__`` (or in ``on_train_start``). ``accumulation`` warns when the recipe accumulates: Lightning divides
every micro-batch's loss by ``accumulate_grad_batches``, each epoch's short last group too. Everything else passes:
the closure steps read right, Lightning's sanity check (2 validation batches before training) is no evaluation pass,
and the validation after the last epoch and ``trainer.predict`` are two passes, not one that sees each row twice.
"""

import math
from collections import defaultdict

import lightning.pytorch as pl
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import get_linear_schedule_with_warmup

from mrpc_check.checks import lightning_adapter


class GLUETransformer(pl.LightningModule):
    def __init__(self, model, learning_rate=2e-5, adam_epsilon=1e-8, warmup_steps=0, weight_decay=0.0):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.outputs = defaultdict(list)

    def forward(self, **inputs):
        return self.model(**inputs)

    def training_step(self, batch, batch_idx):
        return self(**batch)[0]

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        loss, logits = self(**batch)[:2]
        self.outputs[dataloader_idx].append({"loss": loss, "preds": logits.argmax(dim=1), "labels": batch["labels"]})

    def on_validation_epoch_end(self):
        flat = [x for outputs in self.outputs.values() for x in outputs]
        preds = torch.cat([x["preds"] for x in flat]).cpu().numpy()
        labels = torch.cat([x["labels"] for x in flat]).cpu().numpy()
        self.log("val_loss", torch.stack([x["loss"] for x in flat]).mean())
        self.log_dict({"accuracy": accuracy_score(labels, preds), "f1": f1_score(labels, preds)})
        self.outputs.clear()

    def configure_optimizers(self):
        no_decay = ["bias", "LayerNorm.weight"]
        groups = [
            {"params": [p for n, p in self.model.named_parameters() if not any(nd in n for nd in no_decay)],
             "weight_decay": self.hparams.weight_decay},
            {"params": [p for n, p in self.model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.learning_rate, eps=self.hparams.adam_epsilon)
        scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=self.hparams.warmup_steps,
                                                    num_training_steps=self.trainer.estimated_stepping_batches)
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    # The tutorial's module takes its warmup in steps: a ratio becomes steps over the run's optimizer steps.
    per_epoch = math.ceil(math.ceil(len(train_dataset) / recipe.batch_size) / recipe.grad_accum)
    warmup = recipe.warmup_steps or math.ceil(recipe.warmup_ratio * recipe.epochs * per_epoch)
    fit = lightning_adapter(lambda model, recipe: GLUETransformer(model, learning_rate=recipe.lr, warmup_steps=warmup,
                                                                   weight_decay=recipe.weight_decay))
    return fit(model, train_dataset, eval_dataset, collator, recipe)


adapter.supports = {"grad_accum", "max_grad_norm", "warmup", "weight_decay"}

EXPECTED = {
    "modes": "fail",  # trained in eval mode: from_pretrained's model, never switched by Lightning 2.x
    "accumulation": "warn",  # loss / accumulate_grad_batches for the short last group too
    "resume": "skip",  # not declared resumable: the tutorial saves no checkpoint it resumes from
}
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 2, "total": 6}
