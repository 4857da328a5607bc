"""The correct plain PyTorch loop the battery's twins vary: the worked example of a user's own loop.

:class:`PlainLoop` is the walkthrough's loop with evaluation after every epoch, gradient accumulation weighted by
micro-batch size, clipping, warmup, mixed precision and resumable checkpoints, written as a user would, its
pieces as methods so that a twin changes one of them.
"""

from __future__ import annotations

import json
import math
import os

import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from mrpc_check.checks.contract import LoopOutput, Recipe


def decay_groups(model, weight_decay: float) -> list:
    """Two param groups: ``weight_decay`` for weight matrices, 0 for biases and LayerNorm (BERT's convention)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    exempt = [p for n, p in named if n.endswith("bias") or "LayerNorm" in n]
    rest = [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)]
    return [{"params": rest, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]


def _groups(iterable, size: int):
    """Consecutive lists of ``size`` items (the last may be shorter): one optimizer step each."""
    group = []
    for item in iterable:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


class PlainLoop:
    """A correct plain PyTorch loop: the battery's worked example of a user's own loop."""

    resumable = True

    @property
    def __name__(self) -> str:  # what the battery prints as the loop's name
        return type(self).__name__

    def __call__(self, model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
        self.seed_everything(recipe.seed)
        device = torch.device(recipe.device)
        model.to(device)
        sampler = self.make_sampler(train_dataset, recipe)
        loader = DataLoader(train_dataset, batch_size=recipe.batch_size, sampler=sampler, collate_fn=collator, drop_last=self.drop_last)
        eval_loader = DataLoader(self.eval_split(train_dataset, eval_dataset), batch_size=recipe.eval_batch_size, collate_fn=collator)
        optimizer = self.make_optimizer(model, recipe)
        scheduler = self.make_scheduler(optimizer, recipe, self.total_steps(len(loader), recipe))
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.mixed_precision)
        scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
        start = self.restore(recipe, model, optimizer, scheduler)
        predictions, metrics = [], {}

        model.train()
        for epoch in range(start["epoch"], recipe.epochs):
            self.set_epoch(sampler, epoch)
            self.start_epoch(model, optimizer)
            skip = self.batches_to_skip(start, recipe) if epoch == start["epoch"] else 0
            batches = (b for i, b in enumerate(loader) if i >= skip)
            for step_in_epoch, group in enumerate(self.group(batches, recipe.grad_accum)):
                total_examples = sum(len(b["labels"]) for b in group)
                for batch in group:
                    batch = self.model_inputs({k: v.to(device) for k, v in batch.items()})
                    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                        loss = self.compute_loss(model, batch)
                    loss = self.scale_loss(loss, len(batch["labels"]), total_examples, recipe.grad_accum)
                    (scaler.scale(loss) if scaler else loss).backward()
                    self.after_micro_batch(scheduler)
                self.optimizer_step(model, optimizer, scheduler, scaler, recipe)
                done = skip + (step_in_epoch + 1) * recipe.grad_accum
                self.checkpoint(recipe, model, optimizer, scheduler, epoch, min(done, len(loader)))
            predictions, metrics = self.evaluate(model, eval_loader, device, amp)
            self.after_evaluation(model)
        return LoopOutput(predictions=predictions, metrics=metrics)

    # -- the pieces a broken twin changes -------------------------------------------------------
    drop_last = False  # DataLoader(drop_last=...) of the training loader

    def make_optimizer(self, model, recipe: Recipe):
        return torch.optim.AdamW(decay_groups(model, recipe.weight_decay), lr=recipe.lr)

    def total_steps(self, batches: int, recipe: Recipe) -> int:
        return math.ceil(batches / recipe.grad_accum) * recipe.epochs  # a short last group still steps

    def group(self, batches, accum: int):
        return _groups(batches, accum)

    def seed_everything(self, seed: int) -> None:
        torch.manual_seed(seed)

    def make_scheduler(self, optimizer, recipe: Recipe, total: int, warmup_shift: int = 0):
        from transformers import get_scheduler

        warmup = recipe.warmup_steps or math.ceil(total * recipe.warmup_ratio)
        return get_scheduler(recipe.scheduler, optimizer, num_warmup_steps=max(0, warmup + warmup_shift), num_training_steps=total)

    def make_sampler(self, train_dataset, recipe: Recipe):
        # One replica: the same code runs unchanged under torch.distributed with num_replicas=world size.
        return DistributedSampler(train_dataset, num_replicas=1, rank=0, shuffle=True, seed=recipe.seed)

    def set_epoch(self, sampler, epoch: int) -> None:
        sampler.set_epoch(epoch)  # without it every epoch replays epoch 0's order

    def eval_split(self, train_dataset, eval_dataset):
        return eval_dataset

    def start_epoch(self, model, optimizer) -> None:
        pass

    def model_inputs(self, batch: dict) -> dict:
        return batch

    def compute_loss(self, model, batch: dict):
        return model(**batch).loss

    def scale_loss(self, loss, batch_examples: int, group_examples: int, accum: int):
        # Weight by size: the group's summed gradient is the mean over its examples, short group included.
        return loss * batch_examples / group_examples

    def after_micro_batch(self, scheduler) -> None:
        pass

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe: Recipe) -> None:
        if scaler:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if recipe.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        stepped = True
        if scaler:
            scale = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            stepped = scaler.get_scale() >= scale  # the scale drops exactly when the step was skipped
        else:
            optimizer.step()
        if stepped:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def evaluate(self, model, eval_loader, device, amp):
        from sklearn.metrics import accuracy_score, f1_score

        model.eval()
        predictions, references = [], []
        for batch in eval_loader:
            batch = self.model_inputs({k: v.to(device) for k, v in batch.items()})
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = model(**batch).logits
            predictions.extend(logits.argmax(-1).tolist())
            references.extend(batch["labels"].tolist())
        return predictions, {"accuracy": accuracy_score(references, predictions), "f1": f1_score(references, predictions)}

    def after_evaluation(self, model) -> None:
        model.train()  # evaluation switched to eval mode: the next epoch trains again

    # -- resumable checkpoints (one file, after every optimizer step) ---------------------------
    def batches_to_skip(self, start: dict, recipe: Recipe) -> int:
        return start["batches"]

    def checkpoint(self, recipe: Recipe, model, optimizer, scheduler, epoch: int, batches: int) -> None:
        if not recipe.checkpoint_dir:
            return
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": torch.get_rng_state()}
        tmp = os.path.join(recipe.checkpoint_dir, "plain.pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, os.path.join(recipe.checkpoint_dir, "plain.pt"))
        with open(os.path.join(recipe.checkpoint_dir, "plain.json"), "w") as fh:
            json.dump({"epoch": epoch, "batches": batches, "steps": scheduler.last_epoch}, fh)

    def restore(self, recipe: Recipe, model, optimizer, scheduler) -> dict:
        start = {"epoch": 0, "batches": 0, "steps": 0}
        if not (recipe.resume and recipe.checkpoint_dir):
            return start
        state = torch.load(os.path.join(recipe.checkpoint_dir, "plain.pt"), weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        with open(os.path.join(recipe.checkpoint_dir, "plain.json")) as fh:
            start.update(json.load(fh))
        return start
