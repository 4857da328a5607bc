"""Stage 6c: the same recipe through ``transformers.Trainer``, the comparison users know.

Trainer draws its own random batches (seeded by ``seed``), so its trajectory is
not the manual loop's; its recipe is the same: AdamW (biases and LayerNorm
exempt from decay), linear schedule, same batch size, lr, epochs, accumulation
and clipping (none unless asked: Trainer's own default clips at 1.0).
"""

from __future__ import annotations

import shutil
import tempfile
import time

import torch

from mrpc_check.compat import trainer_processing_kwargs, training_args_kwargs
from mrpc_check.pipeline.config import TrainConfig
from mrpc_check.pipeline.evaluation import load_metric
from mrpc_check.pipeline.model import autocast_dtype, resolve_device
from mrpc_check.pipeline.steplog import TrainResult


def _fused_adamw() -> bool:
    """Whether build_optimizer gets the fused AdamW here (torch >= 2.4 on CPU)."""
    from mrpc_check.pipeline.model import build_optimizer

    return bool(build_optimizer(torch.nn.Linear(1, 1), 1e-3).defaults.get("fused"))


class CountingCollator:
    """Wraps a collator and counts real and padded tokens while ``counting`` is on."""

    def __init__(self, collator) -> None:
        self.collator = collator
        self.counting = False
        self.samples = 0
        self.real_tokens = 0
        self.padded_tokens = 0

    def __call__(self, features):
        batch = self.collator(features)
        if self.counting:
            mask = batch["attention_mask"]
            self.samples += mask.shape[0]
            self.real_tokens += int(mask.sum())
            self.padded_tokens += mask.numel()
        return batch


def example_mean_trainer(trainer_class):
    """``trainer_class`` with its loss weighted per example across an accumulated group.

    Trainer's default divides each micro-batch's *mean* loss by the accumulation steps, which
    over-weights the examples of a short last micro-batch: that step's gradient is then not the
    big batch's. Told that the model "accepts loss kwargs", Trainer counts the group's labels
    (``num_items_in_batch``, over all processes under DDP) and leaves the scaling to the loss;
    here the model's own mean loss is weighted by ``batch / group`` examples, so the step equals
    one batch of the whole group, as the manual loop's size weights do. The model still
    receives the labels and returns its loss (what the check battery observes).
    """

    class ExampleMeanTrainer(trainer_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # makes Trainer count num_items_in_batch, not divide by steps

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outputs = model(**inputs)  # labels included: the model's mean cross-entropy
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs[0]
            if num_items_in_batch is not None:
                loss = loss * inputs["labels"].numel() / num_items_in_batch
                if getattr(self.args, "average_tokens_across_devices", False) and self.args.world_size > 1:
                    loss = loss * self.args.world_size  # the count is global; DDP averages the gradients
            return (loss, outputs) if return_outputs else loss

    ExampleMeanTrainer.__name__ = ExampleMeanTrainer.__qualname__ = f"ExampleMean{trainer_class.__name__}"
    return ExampleMeanTrainer


def train_trainer(model, tokenizer, tokenized, collator, cfg: TrainConfig, metric=None) -> TrainResult:
    """Fine-tune with ``transformers.Trainer`` and report in the loops' terms.

    Args:
        model: a sequence classifier.
        tokenizer: its tokenizer (saved with checkpoints by Trainer).
        tokenized: ``DatasetDict`` from :func:`mrpc_check.pipeline.tokenize.tokenize_dataset` (or any
            mapping with ``train`` and ``validation`` datasets).
        collator: the padding collator.
        cfg: the recipe.
        metric: an ``evaluate`` module; the bundled MRPC metric when None.

    Returns:
        :class:`TrainResult`; ``step_losses`` holds Trainer's logged losses, one per
        ``log_every`` steps (Trainer averages the loss over each logging interval).
    """
    from transformers import Trainer, TrainerCallback, TrainingArguments

    device = resolve_device(cfg.device)
    amp_dtype = autocast_dtype(cfg.mixed_precision, device)
    metric = metric or load_metric()
    counting = CountingCollator(collator)

    class _CountTrainingBatches(TrainerCallback):
        # Trainer collates evaluation batches with the same collator: count only inside epochs.
        def on_epoch_begin(self, args, state, control, **kwargs):
            counting.counting = True

        def on_epoch_end(self, args, state, control, **kwargs):
            counting.counting = False

    last_predictions: list[int] = []

    def compute_metrics(prediction):
        logits, labels = prediction.predictions, prediction.label_ids
        last_predictions[:] = logits.argmax(-1).tolist()
        return metric.compute(predictions=logits.argmax(-1), references=labels)

    scratch = tempfile.mkdtemp(prefix="mrpc-trainer-")
    args = TrainingArguments(
        **training_args_kwargs(
            TrainingArguments,
            eval_strategy="epoch",
            warmup_ratio=cfg.warmup_ratio,
            warmup_steps=cfg.warmup_steps,
            output_dir=scratch,  # saves nothing (save_strategy "no"); removed afterwards, never left in OUTPUT
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=cfg.eval_batch_size,
            learning_rate=cfg.lr,
            num_train_epochs=cfg.epochs,
            weight_decay=cfg.weight_decay,
            lr_scheduler_type=cfg.scheduler,
            gradient_accumulation_steps=cfg.grad_accum,
            max_grad_norm=cfg.max_grad_norm or 0.0,  # 0 disables clipping, as in the walkthrough
            optim="adamw_torch_fused" if _fused_adamw() else "adamw_torch",  # the AdamW the loops use
            seed=cfg.seed,
            save_strategy="no",
            logging_strategy="steps",
            logging_steps=1,  # loss and lr per optimizer step, as the other loops record them
            report_to="none",
            bf16=amp_dtype == torch.bfloat16,
            fp16=amp_dtype == torch.float16,
            use_cpu=device.type == "cpu",
            dataloader_num_workers=cfg.num_workers,
        )
    )
    trainer = example_mean_trainer(Trainer)(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        data_collator=counting,
        compute_metrics=compute_metrics,
        callbacks=[_CountTrainingBatches()],
        **trainer_processing_kwargs(tokenizer, Trainer),
    )
    started = time.perf_counter()
    try:
        trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    wall = time.perf_counter() - started

    history = trainer.state.log_history
    result = TrainResult()
    result.step_losses = [h["loss"] for h in history if "loss" in h]
    result.step_lrs = [h["learning_rate"] for h in history if "loss" in h and "learning_rate" in h]
    epoch_logs = [h for h in history if "eval_f1" in h]
    result.epochs = [
        {"epoch": i + 1, "accuracy": float(h["eval_accuracy"]), "f1": float(h["eval_f1"])} for i, h in enumerate(epoch_logs)
    ]
    # Trainer's train_runtime includes the per-epoch evaluations: take them out, as the loops do.
    result.runtime_s = wall - sum(h.get("eval_runtime", 0.0) for h in epoch_logs)
    result.train_samples = counting.samples
    result.real_tokens = counting.real_tokens
    result.padded_tokens = counting.padded_tokens
    result.optimizer_steps = trainer.state.global_step
    result.final_lr = trainer.lr_scheduler.get_last_lr()[0]
    result.eval_predictions = list(last_predictions)
    for epoch, metrics in enumerate(result.epochs):
        print(f"epoch {epoch + 1}: validation accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}")
    return result
