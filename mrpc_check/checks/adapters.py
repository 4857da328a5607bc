"""Adapters: this project's three loops, and any user's ``transformers.Trainer`` (or subclass).

Our loops are reached through :func:`mrpc_check.pipeline.run.fit`, the very function
``mrpc-check train`` calls after building the model, so the battery verifies the code the CLI
runs (loaders, optimizer, loop, evaluation), not a test double of it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from mrpc_check.checks.contract import LoopOutput, Recipe


def _config(loop: str, recipe: Recipe, output_dir: str):
    from mrpc_check.pipeline.config import make_config

    return make_config(
        loop=loop, device=recipe.device, epochs=recipe.epochs, batch_size=recipe.batch_size,
        eval_batch_size=recipe.eval_batch_size, lr=recipe.lr, scheduler=recipe.scheduler,
        warmup_steps=recipe.warmup_steps, warmup_ratio=recipe.warmup_ratio, weight_decay=recipe.weight_decay,
        grad_accum=recipe.grad_accum, max_grad_norm=recipe.max_grad_norm, mixed_precision=recipe.mixed_precision,
        group_by_length=recipe.group_by_length, seed=recipe.seed, output_dir=output_dir,
        checkpoint_every="1" if recipe.checkpoint_dir and loop != "trainer" else None,
        resume=recipe.resume, log_every=1000,
    )


def _ours(loop: str, model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
    """Run one of our loops exactly as the pipeline does after loading the model."""
    from transformers import set_seed

    from mrpc_check.pipeline.checkpoint import Checkpointer
    from mrpc_check.pipeline.run import fit

    with tempfile.TemporaryDirectory(prefix=f"mrpc-{loop}-") as scratch:
        cfg = _config(loop, recipe, recipe.checkpoint_dir or scratch)
        set_seed(cfg.seed)  # as run_training does before building the model: dropout draws from it
        checkpointer = None
        if recipe.checkpoint_dir:
            checkpointer = Checkpointer(Path(recipe.checkpoint_dir), cfg.checkpoint_every, cfg.to_dict(), recipe.resume)
        result = fit(model, collator.tokenizer, train_dataset, eval_dataset, collator, cfg, checkpointer)
    return LoopOutput(predictions=result.eval_predictions, metrics=result.final_metrics)


def manual(model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
    """``mrpc-check train --loop manual``."""
    return _ours("manual", model, train_dataset, eval_dataset, collator, recipe)


def accelerate(model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
    """``mrpc-check train --loop accelerate`` (also under torchrun / accelerate launch)."""
    return _ours("accelerate", model, train_dataset, eval_dataset, collator, recipe)


def trainer(model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
    """``mrpc-check train --loop trainer``."""
    return _ours("trainer", model, train_dataset, eval_dataset, collator, recipe)


manual.resumable = accelerate.resumable = True
accelerate.distributed = True


def trainer_adapter(trainer_class=None, name: Optional[str] = None, **training_args):
    """An adapter for a user's ``transformers.Trainer`` or subclass.

    The recipe becomes ``TrainingArguments`` (extra keyword arguments override them); the
    adapter trains with ``trainer_class`` and returns ``trainer.predict(eval_dataset)``'s
    classes, so the user's own prediction path is what the battery checks.

    Example (in ``my_project/checks.py``)::

        from mrpc_check.checks import trainer_adapter
        from my_project.training import MyTrainer
        adapter = trainer_adapter(MyTrainer)

    then ``mrpc-check verify --loop my_project.checks:adapter``.
    """

    def adapter(model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
        from transformers import Trainer, TrainingArguments

        from mrpc_check.compat import trainer_processing_kwargs, training_args_kwargs
        from mrpc_check.pipeline.model import autocast_dtype, resolve_device

        import torch

        cls = trainer_class or Trainer
        device = resolve_device(recipe.device)
        amp = autocast_dtype(recipe.mixed_precision, device)
        with tempfile.TemporaryDirectory(prefix="mrpc-user-trainer-") as scratch:
            values = dict(
                output_dir=scratch, per_device_train_batch_size=recipe.batch_size,
                per_device_eval_batch_size=recipe.eval_batch_size, learning_rate=recipe.lr,
                num_train_epochs=recipe.epochs, weight_decay=recipe.weight_decay, lr_scheduler_type=recipe.scheduler,
                warmup_steps=recipe.warmup_steps, warmup_ratio=recipe.warmup_ratio,
                gradient_accumulation_steps=recipe.grad_accum, max_grad_norm=recipe.max_grad_norm or 0.0,
                seed=recipe.seed, save_strategy="no", eval_strategy="no", report_to="none", logging_strategy="no",
                bf16=amp == torch.bfloat16, fp16=amp == torch.float16, use_cpu=device.type == "cpu",
            )
            values.update(training_args)
            args = TrainingArguments(**training_args_kwargs(TrainingArguments, **values))
            trainer = cls(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                          data_collator=collator, **trainer_processing_kwargs(collator.tokenizer, cls))
            trainer.train()
            prediction = trainer.predict(eval_dataset)
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return LoopOutput(predictions=logits.argmax(-1).tolist())

    adapter.__name__ = name or f"trainer_adapter({getattr(trainer_class, '__name__', 'Trainer')})"
    adapter.distributed = True
    return adapter


def lightning_adapter(build_module, name: Optional[str] = None, datamodule=None, **trainer_kwargs):
    """An adapter for a user's ``LightningModule`` trained by Lightning's ``Trainer`` (``lightning`` or ``pytorch_lightning``).

    Args:
        build_module: ``build_module(model, recipe) -> LightningModule`` around the model handed over: it maps the
            recipe's lr, warmup, weight decay and batch sizes onto the module's own hyper-parameters.
        datamodule: optional ``datamodule(train_dataset, eval_dataset, collator, recipe) -> LightningDataModule``, the
            user's own loaders (predictions come from its ``predict_dataloader``, else its ``val_dataloader``).
            Without it: the walkthrough's loaders (training rows shuffled, evaluation in order), the evaluation
            loader also the validation loader Lightning runs after each epoch (and in its sanity check).
        trainer_kwargs: override the ``Trainer`` flags built from the recipe.

    The recipe's loop settings become Trainer flags, as a user sets them: ``max_epochs``, ``accumulate_grad_batches``,
    ``gradient_clip_val`` (None: no clipping), ``precision`` (``bf16-mixed``, ``16-mixed``), one device of the
    recipe's kind; no logger, no checkpoints, no progress bar. ``seed_everything(recipe.seed)`` runs before the
    module is built. Lightning steps the optimizer through a closure (forward and backward inside
    ``optimizer.step``): the battery reads each step when the closure returns. Predictions: ``trainer.predict`` over
    the evaluation loader through the module's ``predict_step`` (logits, classes, a ``ModelOutput`` or a dict with
    ``logits``/``preds``), or, when it defines none, its ``forward(**batch)``.

    Example (in ``my_project/checks.py``)::

        from mrpc_check.checks import lightning_adapter
        from my_project.module import Classifier
        adapter = lightning_adapter(lambda model, recipe: Classifier(model, lr=recipe.lr, warmup_steps=recipe.warmup_steps))
    """

    def adapter(model, train_dataset, eval_dataset, collator, recipe: Recipe) -> LoopOutput:
        import logging
        import warnings

        from torch.utils.data import DataLoader

        from mrpc_check.pipeline.model import resolve_device

        pl = _lightning()
        pl.seed_everything(recipe.seed, verbose=False)
        module = build_module(model, recipe)
        pl = _lightning(module)  # the Trainer of the package the module was written against
        precision = {"bf16": "bf16-mixed", "fp16": "16-mixed"}.get(recipe.mixed_precision, "32-true")
        with tempfile.TemporaryDirectory(prefix="mrpc-lightning-") as scratch, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(num_workers|bottleneck|does not have many workers).*")
            # Lightning 2.6 on torch 2.13: one deprecation per batch from its own pytree code, nothing the user wrote.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
            quiet = [logging.getLogger(n) for n in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric")]
            levels = [logger.level for logger in quiet]
            for logger in quiet:
                logger.setLevel(logging.WARNING)  # "GPU available: False ...": info lines on every run
            try:
                flags = dict(max_epochs=recipe.epochs, accumulate_grad_batches=recipe.grad_accum,
                             gradient_clip_val=recipe.max_grad_norm, precision=precision,
                             accelerator=resolve_device(recipe.device).type, devices=1, default_root_dir=scratch,
                             logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
                flags.update(trainer_kwargs)
                trainer = pl.Trainer(**flags)
                if datamodule is not None:
                    data = datamodule(train_dataset, eval_dataset, collator, recipe)
                    trainer.fit(module, datamodule=data)
                    predict_loader = _predict_loader(data, pl)
                else:
                    train_loader = DataLoader(train_dataset, batch_size=recipe.batch_size, shuffle=True, collate_fn=collator)
                    predict_loader = DataLoader(eval_dataset, batch_size=recipe.eval_batch_size, collate_fn=collator)
                    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=predict_loader)
                if not _overridden(module, "predict_step", pl):
                    # Lightning's default predict_step calls self(batch): a module whose forward takes **inputs fails.
                    module.predict_step = lambda batch, *args, **kwargs: module(**batch)
                outputs = trainer.predict(module, dataloaders=predict_loader)
            finally:
                for logger, level in zip(quiet, levels):
                    logger.setLevel(level)
        return LoopOutput(predictions=_classes(outputs))

    adapter.__name__ = name or f"lightning_adapter({getattr(build_module, '__name__', 'module')})"
    return adapter


def _lightning(module=None):
    """``lightning.pytorch`` or ``pytorch_lightning``: the one ``module`` subclasses, else whichever is installed."""
    import importlib

    names = ("lightning.pytorch", "pytorch_lightning")
    if module is not None:
        for cls in type(module).__mro__:
            if cls.__name__ == "LightningModule" and cls.__module__.split(".core")[0] in names:
                return importlib.import_module(cls.__module__.split(".core")[0])
    for package in names:
        try:
            return importlib.import_module(package)
        except ImportError:
            continue
    raise ImportError("lightning_adapter needs Lightning: pip install lightning")


def _overridden(obj, method: str, pl, base=None) -> bool:
    """The user's class defines ``method`` (not Lightning's default)."""
    return getattr(type(obj), method) is not getattr(base or pl.LightningModule, method)


def _predict_loader(data, pl):
    """The user's datamodule's prediction loader, else its validation loader (one loader, in order)."""
    for method in ("predict_dataloader", "val_dataloader"):
        if _overridden(data, method, pl, pl.LightningDataModule):
            return getattr(data, method)()
    raise TypeError(f"{type(data).__name__} has no predict_dataloader or val_dataloader: define one over eval_dataset, in order")


def _classes(outputs) -> list:
    """trainer.predict's per-batch outputs (logits, classes, ModelOutput, dict) -> one class per row, in order."""
    import torch

    classes = []
    for out in outputs:
        if isinstance(out, dict) or hasattr(out, "logits"):
            getter = out.get if isinstance(out, dict) else lambda key: getattr(out, key, None)
            out = next((getter(key) for key in ("logits", "preds", "predictions") if getter(key) is not None), None)
            if out is None:
                raise TypeError("predict_step returned a dict without 'logits', 'preds' or 'predictions': return the logits")
        out = torch.as_tensor(out).detach().cpu()
        classes += (out.float().argmax(-1) if out.ndim == 2 else out).tolist()
    return classes
