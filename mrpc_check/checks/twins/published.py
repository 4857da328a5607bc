"""Twins of the bugs of the loops the world writes (published scripts), and extras the recipe never asked for."""

from __future__ import annotations

import torch

from mrpc_check.checks.twins.plain import PlainLoop, _groups, decay_groups


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
