"""The walkthrough's Accelerate loop, correct, and its twins (accumulation, schedule sizing, gathering)."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader

from mrpc_check.checks.contract import LoopOutput, Recipe
from mrpc_check.checks.twins.plain import _groups, decay_groups


class AcceleratedLoop:
    """The walkthrough's Accelerate loop, correct: runs alone or under torchrun / accelerate launch.

    Accumulation is done by hand (``no_sync`` on all but a group's last micro-batch) so that each
    micro-batch can be weighted by its share of the group; the scheduler is built after
    ``prepare`` from the sharded loader and stepped once per optimizer step.
    """

    distributed = True

    @property
    def __name__(self) -> str:
        return type(self).__name__

    def __call__(self, model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
        from accelerate import Accelerator
        from transformers import get_scheduler, set_seed

        set_seed(recipe.seed)
        accelerator = self.make_accelerator(recipe, Accelerator)
        generator = torch.Generator().manual_seed(recipe.seed)
        loader = DataLoader(train_dataset, batch_size=recipe.batch_size, shuffle=True, collate_fn=collator, generator=generator)
        eval_loader = DataLoader(eval_dataset, batch_size=recipe.eval_batch_size, collate_fn=collator)
        optimizer = torch.optim.AdamW(decay_groups(model, recipe.weight_decay), lr=recipe.lr)
        early = self.schedule_before_prepare(optimizer, loader, recipe)
        model, optimizer, loader, eval_loader = accelerator.prepare(model, optimizer, loader, eval_loader)
        scheduler = early or self.schedule(optimizer, loader, recipe, get_scheduler)
        predictions = []
        for epoch in range(recipe.epochs):
            loader.set_epoch(epoch)
            model.train()
            self.train_epoch(accelerator, model, loader, optimizer, scheduler, recipe)
            model.eval()
            predictions = []
            with torch.no_grad():
                for batch in eval_loader:
                    predictions += self.gather(accelerator, model(**batch).logits.argmax(-1)).tolist()
        return LoopOutput(predictions=predictions)

    def make_accelerator(self, recipe, accelerator_class):
        return accelerator_class(cpu=recipe.device == "cpu")

    def train_epoch(self, accelerator, model, loader, optimizer, scheduler, recipe) -> None:
        import contextlib

        for group in _groups(loader, recipe.grad_accum):
            total = sum(len(b["labels"]) for b in group)
            for j, batch in enumerate(group):
                last = j == len(group) - 1
                with contextlib.nullcontext() if last else accelerator.no_sync(model):
                    accelerator.backward(model(**batch).loss * len(batch["labels"]) / total)
            if recipe.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

    def schedule_before_prepare(self, optimizer, loader, recipe):
        return None

    def schedule(self, optimizer, loader, recipe, get_scheduler):
        total = math.ceil(len(loader) / recipe.grad_accum) * recipe.epochs  # the prepared, sharded loader
        warmup = recipe.warmup_steps or math.ceil(total * recipe.warmup_ratio)
        return get_scheduler(recipe.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total)

    def gather(self, accelerator, predictions):
        return accelerator.gather_for_metrics(predictions)  # drops the duplicates that even out the last batch


class AccelerateAccumulate(AcceleratedLoop):
    """Accelerate's own idiom, ``with accelerator.accumulate(model): accelerator.backward(loss)``.

    Exact for groups of equal micro-batches; the epoch's last group, holding a short micro-batch,
    is weighted like full ones (accelerator.backward divides every loss by the accumulation steps).
    A confined effect: the accumulation check warns.
    """

    distributed = False

    def make_accelerator(self, recipe, accelerator_class):
        return accelerator_class(cpu=recipe.device == "cpu", gradient_accumulation_steps=recipe.grad_accum)

    def train_epoch(self, accelerator, model, loader, optimizer, scheduler, recipe) -> None:
        for batch in loader:
            with accelerator.accumulate(model):
                accelerator.backward(model(**batch).loss)
                if accelerator.sync_gradients:  # the group's last micro-batch (or the loader's end)
                    if recipe.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()


class BareAcceleratorOnCpu(AcceleratedLoop):
    """Builds ``Accelerator()`` without ``cpu=True``: on a machine with no GPU each rank runs alone (one process each)."""

    def make_accelerator(self, recipe, accelerator_class):
        return accelerator_class()


class ScheduleSizedBeforePrepare(AcceleratedLoop):
    """Sizes the schedule from the loader before prepare: on 2 processes it never reaches 0 (the walkthrough's bug)."""

    def schedule_before_prepare(self, optimizer, loader, recipe):
        from transformers import get_scheduler

        return self.schedule(optimizer, loader, recipe, get_scheduler)


class PreparedSchedulerSizedAfterPrepare(AcceleratedLoop):
    """Sizes the schedule from the prepared loader and also passes it to prepare: it advances once per process per step."""

    def schedule(self, optimizer, loader, recipe, get_scheduler):
        from accelerate.scheduler import AcceleratedScheduler

        # What accelerator.prepare(..., scheduler) returns: a wrapper that steps once per process (split_batches=False).
        return AcceleratedScheduler(super().schedule(optimizer, loader, recipe, get_scheduler), optimizer)


class GatherNotForMetrics(AcceleratedLoop):
    """Gathers predictions with gather: the last batch's padding duplicates are scored too."""

    def gather(self, accelerator, predictions):
        return accelerator.gather(predictions)
