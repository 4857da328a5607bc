"""transformers' ``Trainer``, the library's own training loop, as a user puts it under the battery.

Source: huggingface/transformers, ``src/transformers/trainer.py`` (the installed release: the suite
runs 4.57 to 5.24). The adapter is the project's :func:`mrpc_check.checks.trainer_adapter`: the recipe
becomes ``TrainingArguments`` (linear schedule with warmup, ``gradient_accumulation_steps``,
``max_grad_norm``, ``weight_decay`` with biases and LayerNorm exempt), ``trainer.train()``, then
``trainer.predict``. The control of the gallery: a published loop that implements every feature,
judged right.
"""

from mrpc_check.checks import trainer_adapter

adapter = trainer_adapter(name="transformers.Trainer")

EXPECTED = {"resume": "skip"}  # not declared resumable (the Trainer resumes by its own checkpoints, not the battery's contract)


def expected() -> dict:
    """The verdicts on the installed transformers: the accumulation bug is version-dependent.

    Where BertForSequenceClassification.forward takes **kwargs (transformers 5.x), the Trainer decides the
    model scales its own loss by num_items_in_batch and stops dividing by the accumulation steps, while
    BERT's classification loss is a plain mean that ignores it: each accumulated step's gradient is
    grad_accum times the big batch's (transformers issue #47688, open). Where forward has no **kwargs,
    the Trainer divides each micro-batch's mean by the steps: exact for full groups, the idiom's
    warning on each epoch's short last group.
    """
    import inspect

    from transformers import BertForSequenceClassification

    # The Trainer's own order: a model's accepts_loss_kwargs attribute first, else whether forward takes **kwargs.
    takes_kwargs = getattr(BertForSequenceClassification, "accepts_loss_kwargs", None)
    if takes_kwargs is None:
        takes_kwargs = any(p.kind == inspect.Parameter.VAR_KEYWORD
                           for p in inspect.signature(BertForSequenceClassification.forward).parameters.values())
    return {**EXPECTED, "accumulation": "fail" if takes_kwargs else "warn"}
# The effective recipe the battery must infer (tests/checks/test_published.py).
EFFECTIVE = {"clip_norm": None, "frozen": (), "label_smoothing": 0.0, "warmup": 2, "total": 6}
