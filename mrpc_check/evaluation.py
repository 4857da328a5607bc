"""Stage 7: the MRPC metric (bundled `evaluate` module) and the evaluation loop."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from mrpc_check.model import autocast_context

# The Hub's glue/mrpc metric is a script that evaluate downloads; this one ships with the package.
METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "mrpc"


def load_metric():
    """The bundled MRPC metric (accuracy, F1 of 'equivalent'), loaded by path, kept in memory."""
    import evaluate

    return evaluate.load(str(METRIC_PATH), keep_in_memory=True)


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    loader,
    metric=None,
    device: Optional[torch.device] = None,
    autocast_dtype: Optional[torch.dtype] = None,
    gather: Optional[Callable] = None,
    predictions_out: Optional[list] = None,
) -> dict:
    """Predict every example of ``loader`` once and score it.

    Args:
        model: a sequence classifier.
        loader: evaluation DataLoader (labels under ``labels``).
        metric: an ``evaluate`` module; the bundled MRPC metric when None.
        device: where to move batches; None leaves them where they are (Accelerate placed them).
        autocast_dtype: run the forward pass under autocast in this dtype.
        gather: ``accelerator.gather_for_metrics`` under Accelerate: collects every
            process's predictions and drops the samples added to even out the last batch.
        predictions_out: a list to extend with every predicted class, in loader order
            (what the check battery compares with its own forward of each example).

    Returns:
        ``{"accuracy": float, "f1": float}``.
    """
    metric = metric or load_metric()
    was_training = model.training
    model.eval()
    for batch in loader:
        if device is not None:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast_context(batch["input_ids"].device, autocast_dtype):
            logits = model(**batch).logits  # (batch, 2)
        predictions = logits.argmax(dim=-1)
        references = batch["labels"]
        if gather is not None:
            predictions, references = gather((predictions, references))
        predictions = predictions.cpu()  # one device-to-host copy serves the metric and the sink
        metric.add_batch(predictions=predictions, references=references.cpu())
        if predictions_out is not None:
            predictions_out.extend(predictions.tolist())
    model.train(was_training)
    return {k: float(v) for k, v in metric.compute().items()}



def majority_baseline(labels: Sequence[int]) -> dict:
    """What always answering the split's majority class scores: the floor any real model must clear.

    Computed from the labels actually loaded (MRPC validation: 68.4 % "equivalent", so accuracy
    0.684 and F1 0.812), never hard-coded: another split or source has another baseline.
    """
    labels = list(labels)
    positives = sum(1 for y in labels if y == 1)
    majority = 1 if positives * 2 >= len(labels) else 0
    accuracy = (positives if majority == 1 else len(labels) - positives) / len(labels) if labels else 0.0
    # F1 of class 1: predicting all 1 gives precision = positive rate and recall 1; all 0 gives no true positive.
    rate = positives / len(labels) if labels else 0.0
    f1 = 2 * rate / (rate + 1) if majority == 1 and positives else 0.0
    return {"label": majority, "accuracy": accuracy, "f1": f1, "examples": len(labels)}


def degeneracy(predictions: Sequence[int], metrics: dict, baseline: dict) -> Optional[str]:
    """Why a run is degenerate (one class predicted, or no better than the majority baseline), else None."""
    classes = sorted(set(predictions))
    if len(classes) == 1:
        return f"predicts only class {classes[0]} on all {len(predictions)} validation examples"
    slack = 1e-9  # the metric and the closed form round differently: F1 0.7857142857142857 vs ...858
    if metrics and metrics.get("accuracy", 1.0) <= baseline["accuracy"] + slack and metrics.get("f1", 1.0) <= baseline["f1"] + slack:
        return (f"accuracy {metrics['accuracy']:.4f} and F1 {metrics['f1']:.4f} at or below the majority baseline "
                f"({baseline['accuracy']:.4f}, {baseline['f1']:.4f})")
    return None
