"""A plain PyTorch loop written as a user would (correct), and its broken twins.

:class:`PlainLoop` is the worked example of a user's own loop under the battery: the
walkthrough's loop with evaluation after every epoch, gradient accumulation weighted by
micro-batch size, clipping, warmup, mixed precision and resumable checkpoints. Each class
below it changes one method to plant one classic fine-tuning bug; ``CATALOGUE`` maps each to
the check aimed at it. ``tests/checks/test_broken.py`` asserts that every twin fails that
check with a message naming the bug, and the calibration table in docs/published-loops.md is printed from it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

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


# -- the broken twins, one classic bug each ----------------------------------------------------


class SchedulerPerMicroBatch(PlainLoop):
    """Steps the scheduler after every micro-batch: with accumulation the rate decays too fast."""

    def after_micro_batch(self, scheduler) -> None:
        scheduler.step()

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        if recipe.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


class LossNotScaledForAccumulation(PlainLoop):
    """Backpropagates each micro-batch's mean loss as is: the step's gradient is accum times too big."""

    def scale_loss(self, loss, batch_examples, group_examples, accum):
        return loss


class LossDividedByAccumSteps(PlainLoop):
    """Divides by the accumulation steps: right for equal micro-batches, wrong for a short last one."""

    def scale_loss(self, loss, batch_examples, group_examples, accum):
        return loss / accum


class ZeroGradOncePerEpoch(PlainLoop):
    """Clears gradients at the start of each epoch only: every step carries the previous steps' gradients."""

    def start_epoch(self, model, optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        if recipe.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        scheduler.step()


class NoTrainAfterEvaluation(PlainLoop):
    """Never calls model.train() after evaluating: epochs after the first train in eval mode."""

    def after_evaluation(self, model) -> None:
        pass


class NoEvalMode(PlainLoop):
    """Evaluates without model.eval(): dropout stays on while predicting."""

    @torch.no_grad()
    def evaluate(self, model, eval_loader, device, amp):
        model.eval = lambda: model  # what forgetting the call amounts to
        try:
            return super().evaluate(model, eval_loader, device, amp)
        finally:
            del model.eval


class DropsAttentionMask(PlainLoop):
    """Feeds input_ids without the attention mask: padding tokens are attended to."""

    def model_inputs(self, batch):
        return {k: v for k, v in batch.items() if k != "attention_mask"}


class DropsTokenTypes(PlainLoop):
    """Feeds no token_type_ids: both sentences get segment 0."""

    def model_inputs(self, batch):
        return {k: v for k, v in batch.items() if k != "token_type_ids"}


class EvaluatesOnTrainSplit(PlainLoop):
    """Evaluates on the training split: the validation figures measure memorisation."""

    def eval_split(self, train_dataset, eval_dataset):
        return train_dataset


class TrainsOnEvaluationSplit(PlainLoop):
    """Trains on the training and the evaluation split: the evaluation labels leak into the model."""

    def __call__(self, model, train_dataset, eval_dataset, collator, recipe):
        from datasets import concatenate_datasets

        train = train_dataset.with_format(None)
        merged = concatenate_datasets([train, eval_dataset.with_format(None).cast(train.features)])
        merged.set_format("torch")
        return super().__call__(model, merged, eval_dataset, collator, recipe)


class CachesEvaluationLabels(PlainLoop):
    """Memoises evaluation answers by input, and stores the labels in the cache instead of the predictions.

    From the second evaluation on, the model answers every validation example it has seen with
    that example's label. No validation row is in a training batch and the optimizer never sees
    one, and the answer is the model's own (the battery's forward gets it too): only agreement
    beyond chance in the label control shows the leak. Training forwards bypass the cache, so
    every other check sees a correct loop.
    """

    @staticmethod
    def _key(input_ids, attention_mask) -> tuple:
        return tuple(input_ids[attention_mask.bool()].tolist())  # the example's tokens, padding stripped

    def evaluate(self, model, eval_loader, device, amp):
        cache = model.__dict__.setdefault("_answer_cache", {})
        if not hasattr(model, "_answer_hook"):
            def answer(module, args, kwargs, output):
                if module.training or "input_ids" not in kwargs:
                    return None
                keys = [self._key(i, m) for i, m in zip(kwargs["input_ids"], kwargs["attention_mask"])]
                if not all(k in cache for k in keys):
                    return None
                output["logits"] = torch.nn.functional.one_hot(torch.tensor([cache[k] for k in keys], device=output.logits.device),
                                                               output.logits.shape[-1]).to(output.logits.dtype)
                return output

            model._answer_hook = model.register_forward_hook(answer, with_kwargs=True)
        predictions, metrics = super().evaluate(model, eval_loader, device, amp)
        for batch in eval_loader:  # the bug: the cache is filled from the batch's labels, not from the predictions
            for ids, mask, label in zip(batch["input_ids"], batch["attention_mask"], batch["labels"].tolist()):
                cache[self._key(ids, mask)] = label
        return predictions, metrics


class SeedIgnored(PlainLoop):
    """Seeds nothing from recipe.seed: runs with another seed see the same data order."""

    def seed_everything(self, seed: int) -> None:
        pass

    def make_sampler(self, train_dataset, recipe):
        return DistributedSampler(train_dataset, num_replicas=1, rank=0, shuffle=True, seed=0)


class EpochNotSetOnSampler(PlainLoop):
    """Never calls sampler.set_epoch: every epoch replays the first epoch's order."""

    def set_epoch(self, sampler, epoch: int) -> None:
        pass


class ResumeSkipsOptimizerSteps(PlainLoop):
    """On resume skips one batch per optimizer step done in the epoch: with accumulation, too few."""

    def batches_to_skip(self, start, recipe):
        return start["batches"] // recipe.grad_accum


class ClipsBeforeUnscaling(PlainLoop):
    """fp16: clips the scaled gradients, then unscales: the applied gradient is far below the clip."""

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        if recipe.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        if scaler:
            scaler.step(optimizer)  # unscales after the clip
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()  # and advances the schedule even when the scaler skipped the step
        optimizer.zero_grad(set_to_none=True)


# -- near misses: the same families, each bug small but real (a check's precision, not its reach) --


class ScheduleOneStepLong(PlainLoop):
    """Sizes the schedule for one optimizer step more than the loop takes: every decaying lr a little high, the last not 0."""

    def make_scheduler(self, optimizer, recipe, total, warmup_shift=0):
        return super().make_scheduler(optimizer, recipe, total + 1)


class WarmupOneStepShort(PlainLoop):
    """Warms up for one optimizer step fewer than asked (an off-by-one in the warmup count)."""

    def make_scheduler(self, optimizer, recipe, total, warmup_shift=0):
        return super().make_scheduler(optimizer, recipe, total, warmup_shift=-1)


class GradientOnePercentHigh(PlainLoop):
    """Scales every micro-batch's loss 1 % too high (a stray constant): every step's gradient is 1.01x the big batch's."""

    def scale_loss(self, loss, batch_examples, group_examples, accum):
        return loss * batch_examples / group_examples * 1.01


class GradientLeaksOnePercent(PlainLoop):
    """Shrinks the gradients to 1 % instead of clearing them: each step carries 1 % of the previous one."""

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        if recipe.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        scheduler.step()
        for param in model.parameters():
            if param.grad is not None:
                param.grad.mul_(0.01)


class ClipsOnePercentHigh(PlainLoop):
    """Clips to 1.01 x max_grad_norm (a rounded constant): every applied norm 1 % above the asked one."""

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        if recipe.max_grad_norm:
            recipe = recipe.replace(max_grad_norm=recipe.max_grad_norm * 1.01)
        super().optimizer_step(model, optimizer, scheduler, scaler, recipe)


class DropsOneEvaluationRow(PlainLoop):
    """Evaluates on all but the last validation example (an off-by-one slice)."""

    def eval_split(self, train_dataset, eval_dataset):
        return eval_dataset.select(range(len(eval_dataset) - 1))


class ResumeOneBatchEarly(PlainLoop):
    """On resume skips one micro-batch too few: one batch of the epoch is trained on twice."""

    def batches_to_skip(self, start, recipe):
        return max(0, start["batches"] - 1)


# -- bugs of the loops the world writes (published scripts), one each ---------------------------


class DropsLastBatch(PlainLoop):
    """``DataLoader(drop_last=True)``: each epoch's incomplete last batch is never trained on (a confined effect)."""

    drop_last = True


class AccumulatesOffByOne(PlainLoop):
    """``if step % accum == 0`` on a 0-based step: every epoch's first step takes one micro-batch, the last leaks on."""

    _hold = False  # the group just run closes no step: its gradient stays in .grad

    def group(self, batches, accum):
        group = []
        for step, batch in enumerate(batches):
            group.append(batch)
            if step % accum == 0:
                yield group
                group = []
        if group:  # backward runs, no step follows: the published loop carries it into the next epoch
            self._hold = True
            yield group

    def scale_loss(self, loss, batch_examples, group_examples, accum):
        return loss / accum

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        if self._hold:
            self._hold = False
            return
        super().optimizer_step(model, optimizer, scheduler, scaler, recipe)


class IgnoresGradAccum(PlainLoop):
    """Steps the optimizer after every micro-batch whatever recipe.grad_accum says (a loop that does not accumulate, undeclared)."""

    def group(self, batches, accum):
        return _groups(batches, 1)

    def total_steps(self, batches, recipe):
        return batches * recipe.epochs

    def scale_loss(self, loss, batch_examples, group_examples, accum):
        return loss


class DeclaresNoAccumulation(IgnoresGradAccum):
    """The same loop with its limits declared: no accumulation, no clipping. Judged on the rest: everything passes."""

    supports = {"warmup", "weight_decay", "mixed_precision", "resume"}

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        super().optimizer_step(model, optimizer, scheduler, scaler, recipe.replace(max_grad_norm=None))


class IgnoresClipping(PlainLoop):
    """Never clips, and does not say so: recipe.max_grad_norm is silently ignored."""

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        super().optimizer_step(model, optimizer, scheduler, scaler, recipe.replace(max_grad_norm=None))


class ScheduleFloored(PlainLoop):
    """Sizes the schedule as ``len(loader) * epochs // accum``: one step short when an epoch ends in a short group."""

    def total_steps(self, batches, recipe):
        return batches * recipe.epochs // recipe.grad_accum


class ScheduleCountsMicroBatches(PlainLoop):
    """Sizes the schedule in micro-batches (``len(loader) * epochs``) but steps it per optimizer step: never reaches 0."""

    def total_steps(self, batches, recipe):
        return batches * recipe.epochs


class TorchDefaultWeightDecay(PlainLoop):
    """``torch.optim.AdamW(model.parameters(), lr=lr)``: torch's default weight decay 0.01 where the recipe says 0."""

    def make_optimizer(self, model, recipe):
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr)


class HeadLeftOutOfOptimizer(PlainLoop):
    """Builds the optimizer from the encoder's parameters only: the classification head never trains."""

    def make_optimizer(self, model, recipe):
        return torch.optim.AdamW(decay_groups(model.base_model, recipe.weight_decay), lr=recipe.lr)


class DecaysBiasesAndLayerNorm(PlainLoop):
    """Decays every tensor, biases and LayerNorm included (one param group)."""

    def make_optimizer(self, model, recipe):
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


# -- extras: what a loop does that the recipe never asked for -----------------------------------


class ClipsWhenRecipeHasNone(PlainLoop):
    """Clips at 0.5 when the recipe asks for no clipping (``max_grad_norm or 0.5``): a clip the recipe never asked for."""

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        super().optimizer_step(model, optimizer, scheduler, scaler, recipe.replace(max_grad_norm=recipe.max_grad_norm or 0.5))


class WarmsUpWithoutRecipe(PlainLoop):
    """Declares no warmup yet warms up over 2 steps fixed in the loop (``num_warmup_steps=2``)."""

    supports = {"grad_accum", "max_grad_norm", "weight_decay", "mixed_precision", "resume"}

    def make_scheduler(self, optimizer, recipe, total, warmup_shift=0):
        return super().make_scheduler(optimizer, recipe.replace(warmup_steps=2), total, warmup_shift)


class SmoothsLabels(PlainLoop):
    """Computes its own loss, ``cross_entropy(logits, labels, label_smoothing=0.1)``: smoothing the recipe never asked for."""

    def compute_loss(self, model, batch):
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return torch.nn.functional.cross_entropy(logits, batch["labels"], label_smoothing=0.1)


class FreezesEmbeddings(PlainLoop):
    """Freezes the embedding layer (``requires_grad = False``) before building the optimizer."""

    def make_optimizer(self, model, recipe):
        for param in model.base_model.embeddings.parameters():
            param.requires_grad = False
        return super().make_optimizer(model, recipe)


class SetsDropout(PlainLoop):
    """Sets every Dropout module to 0.1 for training (the model came without): its gradients are random."""

    def make_optimizer(self, model, recipe):
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.1
        return super().make_optimizer(model, recipe)


class AveragesWeightsIntoModel(PlainLoop):
    """Writes an exponential moving average of the weights into the model after every step: it trains from the average."""

    resumable = False  # the average is not checkpointed

    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
        super().optimizer_step(model, optimizer, scheduler, scaler, recipe)
        with torch.no_grad():
            shadow = getattr(self, "_shadow", None)
            if shadow is None or shadow[0] is not model:
                self._shadow = shadow = (model, {n: p.detach().clone() for n, p in model.named_parameters()})
            for name, param in model.named_parameters():
                average = shadow[1][name]
                average.mul_(0.5).add_(param.detach(), alpha=0.5)
                param.copy_(average)


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


@dataclass(frozen=True)
class Entry:
    loop: type  # the broken twin
    check: str  # the check aimed at it: the only root cause the whole battery may name
    bug: str  # the bug, as the docs' calibration table names it
    named: str  # what the check's message must say (it names the bug)
    status: str = "fail"  # the verdict: fail, or warn for a confined effect graded by its size
    near_miss: bool = False  # a small but real effect: the row shows the check's precision, not its reach
    extra: bool = False  # something the recipe never asked for, named as its own root cause (an extra, not a classic bug)


CATALOGUE = (
    Entry(SchedulerPerMicroBatch, "schedule", "scheduler stepped per micro-batch", "per micro-batch"),
    Entry(LossNotScaledForAccumulation, "accumulation", "loss not scaled for accumulation", "not scaled for accumulation"),
    Entry(LossDividedByAccumSteps, "accumulation", "short last micro-batch over-weighted (loss / accum)", "weighted equally", "warn"),
    Entry(AccelerateAccumulate, "accumulation", "accelerator.accumulate(): short last micro-batch over-weighted", "weighted equally", "warn"),
    Entry(ZeroGradOncePerEpoch, "gradients_cleared", "zero_grad misplaced (once per epoch)", "zero_grad"),
    Entry(NoTrainAfterEvaluation, "modes", "no model.train() after evaluation", "no model.train()"),
    Entry(NoEvalMode, "modes", "no model.eval() for evaluation", "no model.eval()"),
    Entry(DropsAttentionMask, "inputs", "attention mask dropped", "attention mask dropped"),
    Entry(DropsTokenTypes, "inputs", "token types dropped", "token types dropped"),
    Entry(EvaluatesOnTrainSplit, "evaluation", "evaluating on the train split", "train split"),
    Entry(TrainsOnEvaluationSplit, "label_control", "evaluation split trained on (label leak)", "evaluation split"),
    Entry(CachesEvaluationLabels, "label_control", "evaluation answers cached from the labels (no validation row trained on)",
          "validation labels reach the model"),
    Entry(SeedIgnored, "seed", "seed ignored", "seed ignored"),
    Entry(EpochNotSetOnSampler, "seed", "epoch not set on the sampler", "epoch not set"),
    Entry(ResumeSkipsOptimizerSteps, "resume", "resume skipping the wrong batches", "wrong batches"),
    Entry(ClipsBeforeUnscaling, "mixed_precision", "clipping before unscaling (fp16)", "before unscaling"),
    Entry(BareAcceleratorOnCpu, "process_group", "each rank alone: Accelerator() without cpu=True on a CPU", "never formed one process group"),
    Entry(ScheduleSizedBeforePrepare, "schedule_2proc", "schedule sized before prepare", "before accelerator.prepare"),
    Entry(GatherNotForMetrics, "evaluation_2proc", "gather instead of gather_for_metrics", "gather instead of gather_for_metrics"),
    Entry(PreparedSchedulerSizedAfterPrepare, "schedule_2proc", "scheduler sized after prepare and passed to prepare",
          "once per process"),
    # The bugs of published loops.
    Entry(DropsLastBatch, "coverage", "DataLoader(drop_last=True)", "drop_last", "warn"),
    Entry(AccumulatesOffByOne, "grouping", "accumulation off by one (step % accum == 0)", "step % grad_accum == 0"),
    Entry(IgnoresGradAccum, "grouping", "grad_accum ignored, not declared", "ignores recipe.grad_accum"),
    Entry(IgnoresClipping, "clipping", "max_grad_norm ignored, not declared", "ignores recipe.max_grad_norm"),
    Entry(ScheduleFloored, "schedule", "schedule sized len(loader) * epochs // accum", "floors"),
    Entry(ScheduleCountsMicroBatches, "schedule", "schedule sized in micro-batches", "micro-batches"),
    Entry(TorchDefaultWeightDecay, "optimizer", "torch.optim.AdamW's default weight decay 0.01", "default weight_decay=0.01"),
    Entry(HeadLeftOutOfOptimizer, "optimizer", "classification head left out of the optimizer", "left out of the optimizer"),
    Entry(DecaysBiasesAndLayerNorm, "optimizer", "biases and LayerNorm decayed", "biases and LayerNorm", "warn"),
    # Extras: what a loop does beyond the recipe, named as its own root cause (a choice warns, a silent change fails).
    Entry(ClipsWhenRecipeHasNone, "clipping", "a clip at 0.5 the recipe never asked for", "clips at norm 0.5", "warn", extra=True),
    Entry(WarmsUpWithoutRecipe, "schedule", "a warmup fixed in the loop, the recipe has none", "warms up over 2", "warn", extra=True),
    Entry(SmoothsLabels, "loss", "label smoothing 0.1 in the loop's own loss", "label smoothing 0.1", "warn", extra=True),
    Entry(FreezesEmbeddings, "frozen", "embeddings frozen by the loop", "freezes bert.embeddings", "warn", extra=True),
    Entry(SetsDropout, "dropout", "dropout 0.1 set for training", "sets dropout 0.1", "warn", extra=True),
    Entry(AveragesWeightsIntoModel, "outside_updates", "an average of the weights written into the model every step",
          "updated outside the optimizer", extra=True),
    # Near misses: what a loosened tolerance would let through.
    Entry(ScheduleOneStepLong, "schedule", "schedule sized one step long (lr 0.8 for 0.75 at step 4)", "lags", near_miss=True),
    Entry(WarmupOneStepShort, "schedule", "warmup one step short", "warmup of 1", near_miss=True),
    Entry(GradientOnePercentHigh, "accumulation", "every gradient 1 % high", "1.010x", near_miss=True),
    Entry(GradientLeaksOnePercent, "gradients_cleared", "1 % of the previous step's gradient kept", "not fully cleared", near_miss=True),
    Entry(ClipsOnePercentHigh, "clipping", "clipped to 1.01 x max_grad_norm", "1.01x max_grad_norm", near_miss=True),
    Entry(DropsOneEvaluationRow, "evaluation", "one evaluation row dropped", "dropped", near_miss=True),
    Entry(ResumeOneBatchEarly, "resume", "resume one micro-batch early", "wrong batches", near_miss=True),
)

plain_loop = PlainLoop()  # `mrpc-check verify --loop example`


def calibration_table() -> str:
    """The docs' calibration table: each catalogue bug, the check that caught it, and its message, run now."""
    from mrpc_check.checks.battery import run_battery
    from mrpc_check.checks.contract import load_adapter

    lines = ["| bug (broken twin in `mrpc_check/checks/broken.py`) | row shows | check | verdict | what the check said |",
             "| --- | --- | --- | --- | --- |"]
    for entry in CATALOGUE:
        loop = load_adapter(f"mrpc_check.checks.broken:{entry.loop.__name__}")  # by spec: 2-process checks import it per rank
        verdict = next(v for v in run_battery(loop, checks=[entry.check]) if v.check == entry.check)
        said = verdict.bug if verdict.status in ("fail", "warn") else verdict.figure
        kind = "precision (near miss)" if entry.near_miss else ("extra" if entry.extra else "reach")
        lines.append(f"| {entry.bug} (`{entry.loop.__name__}`) | {kind} | `{entry.check}` | {verdict.status} | {said} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m mrpc_check.checks.broken: print the calibration table
    print(calibration_table())
