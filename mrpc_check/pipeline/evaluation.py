"""Stage 7: the MRPC metric (bundled `evaluate` module) and the evaluation loop (its statistics: stats.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch

from mrpc_check.pipeline.model import autocast_context

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
    progress: bool = False,
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
        progress: show a progress bar (on stderr; gone when done) instead of a silent pause.

    Returns:
        ``{"accuracy": float, "f1": float}``.
    """
    metric = metric or load_metric()
    was_training = model.training
    model.eval()
    from tqdm.auto import tqdm

    for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress, dynamic_ncols=True):
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
