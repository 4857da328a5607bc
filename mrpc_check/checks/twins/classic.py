"""Twins of the classic fine-tuning bugs, one each, and near misses (the same families, each bug small but real)."""

from __future__ import annotations

import torch
from torch.utils.data.distributed import DistributedSampler

from mrpc_check.checks.twins.plain import PlainLoop


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


class EpochsHardCoded(PlainLoop):
    """``num_epochs = 3`` written in the loop: three epochs whatever recipe.epochs says (the schedule sized for them)."""

    def __call__(self, model, train_dataset, eval_dataset, collator, recipe):
        return super().__call__(model, train_dataset, eval_dataset, collator, recipe.replace(epochs=3))


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


class ResumeReplaysAnotherShuffle(PlainLoop):
    """On resume the shuffle is drawn from another generator state (one saved at the wrong moment): the right number
    of micro-batches after the checkpoint, from another order."""

    def restore(self, recipe, model, optimizer, scheduler):
        self.resumed = bool(recipe.resume and recipe.checkpoint_dir)
        return super().restore(recipe, model, optimizer, scheduler)

    def set_epoch(self, sampler, epoch):
        sampler.set_epoch(epoch + (7919 if getattr(self, "resumed", False) else 0))


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
