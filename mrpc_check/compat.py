"""The one place where transformers versions differ (4.57 .. 5.x).

Each helper inspects the installed API instead of comparing version strings,
so a backport or a rename in a later release is handled by what is really there.
"""

from __future__ import annotations

import inspect
from functools import lru_cache


@lru_cache(maxsize=None)
def _params(obj) -> frozenset:
    return frozenset(inspect.signature(obj).parameters)


def trainer_processing_kwargs(tokenizer, trainer_cls=None) -> dict:
    """Trainer's tokenizer argument: ``processing_class`` (>= 4.46), ``tokenizer`` before."""
    from transformers import Trainer

    if trainer_cls is None or issubclass(trainer_cls, Trainer):
        trainer_cls = Trainer  # a subclass's __init__(*args, **kwargs) hides the keyword: Trainer's own decides
    return {"processing_class": tokenizer} if "processing_class" in _params(trainer_cls.__init__) else {"tokenizer": tokenizer}


def training_args_kwargs(args_cls=None, *, eval_strategy: str, warmup_ratio: float = 0.0, warmup_steps: int = 0, **kwargs) -> dict:
    """TrainingArguments keywords for this version.

    * ``eval_strategy`` was ``evaluation_strategy`` before 4.41 (removed in 4.46);
    * ``warmup_ratio`` is gone in 5.x, where ``warmup_steps`` takes a float ratio in [0, 1).
    """
    if args_cls is None:
        from transformers import TrainingArguments as args_cls
    params = _params(args_cls.__init__)
    kwargs["eval_strategy" if "eval_strategy" in params else "evaluation_strategy"] = eval_strategy
    if warmup_steps:
        kwargs["warmup_steps"] = warmup_steps
    elif warmup_ratio:
        if "warmup_ratio" in params:
            kwargs["warmup_ratio"] = warmup_ratio
        else:
            kwargs["warmup_steps"] = float(warmup_ratio)
    return kwargs
