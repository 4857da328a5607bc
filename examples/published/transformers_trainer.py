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
