"""mrpc_check: a GLUE MRPC fine-tuning pipeline and the test suite that verifies it.

Stages, in pipeline order: data -> tokenize -> batching -> model -> train / train_accelerate
/ train_trainer -> evaluation -> report; :mod:`mrpc_check.pipeline.run` calls them in turn.
Heavy libraries are imported by the stage modules, not here, so ``import mrpc_check`` is cheap.
"""

from mrpc_check.pipeline.config import TrainConfig, make_config
from mrpc_check.errors import ConfigError, DataError, ModelError, MrpcCheckError, TrainingError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "ModelError",
    "MrpcCheckError",
    "TrainConfig",
    "TrainingError",
    "make_config",
    "load_mrpc",
    "tokenize_dataset",
    "make_collator",
    "make_train_loader",
    "make_eval_loader",
    "load_model",
    "load_tokenizer",
    "build_optimizer",
    "build_scheduler",
    "train_manual",
    "train_accelerate",
    "train_trainer",
    "evaluate_model",
    "load_metric",
    "run_training",
]

_LAZY = {
    "load_mrpc": "mrpc_check.pipeline.data",
    "tokenize_dataset": "mrpc_check.pipeline.tokenize",
    "make_collator": "mrpc_check.pipeline.batching",
    "make_train_loader": "mrpc_check.pipeline.batching",
    "make_eval_loader": "mrpc_check.pipeline.batching",
    "load_model": "mrpc_check.pipeline.model",
    "load_tokenizer": "mrpc_check.pipeline.model",
    "build_optimizer": "mrpc_check.pipeline.model",
    "build_scheduler": "mrpc_check.pipeline.model",
    "train_manual": "mrpc_check.pipeline.train",
    "train_accelerate": "mrpc_check.pipeline.train_accelerate",
    "train_trainer": "mrpc_check.pipeline.train_trainer",
    "evaluate_model": "mrpc_check.pipeline.evaluation",
    "load_metric": "mrpc_check.pipeline.evaluation",
    "run_training": "mrpc_check.pipeline.run",
}


def __getattr__(name):
    # PEP 562: the public API without importing torch and transformers at package import.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrpc_check' has no attribute {name!r}")
