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
