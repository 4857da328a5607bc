"""Every knob of the pipeline in one frozen dataclass.

Defaults are the reference walkthrough's recipe (bert-base-uncased, batch 8,
AdamW lr 5e-5, linear schedule without warmup, 3 epochs, seed 42). Overrides go
through :func:`make_config` / ``dataclasses.replace``; unknown keys and wrong
types are rejected with a :class:`ConfigError` that names the field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Optional

from mrpc_check.errors import ConfigError

LOOPS = ("manual", "accelerate", "trainer")
PRECISIONS = ("no", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "polynomial")

# `--fast`: the fastest mode measured on this project's 2-core CPU (docs/results.md, "Performance"):
# length-grouped batches, bf16 autocast with fp32 master weights (where the CPU multiplies bf16
# natively), and recipe changes that the report records: batch 32 with lr 1e-4 instead of batch 8
# with 5e-5; no dropout (its random masks took 19 % of a batch-32 MiniLM step on an AVX2 CPU);
# the embeddings and the first 2 of MiniLM's 6 encoder layers frozen (no backward through them:
# a further 26 %). Freezing 3 was faster still (3.04x the Trainer) but fell to F1 0.841 on seed 43.
FAST_PRESET = {"group_by_length": True, "mixed_precision": "bf16", "batch_size": 32, "lr": 1e-4, "eval_batch_size": 128,
               "dropout": 0.0, "freeze_layers": 2}


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN multiplies bf16 natively on this CPU (AVX512-BF16 or AMX), as torch reports it."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe: assume native, as before
        return True


def fast_preset(device: str = "auto") -> tuple[dict, Optional[str]]:
    """``--fast``'s settings for this machine, and a note when one of them had to change.

    bf16 pays only where the CPU multiplies bf16 natively (AVX512-BF16, AMX); elsewhere torch
    emulates it: 0.8 GFLOP/s against fp32's 52 on this project's AVX2 CPU (one run), a 27 s step.
    There ``--fast`` keeps fp32 and says so; ``--mixed-precision bf16`` still forces it.
    """
    import torch

    preset = dict(FAST_PRESET)
    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    if on_cpu and not cpu_has_native_bf16():
        preset["mixed_precision"] = "no"
        return preset, ("this CPU has no native bf16 matrix multiply (torch would emulate it, far slower "
                        "than fp32): training in fp32; pass --mixed-precision bf16 to force bf16")
    return preset, None


# The environment variable that points at an MRPC source when --data is not given.
DATA_ENV = "MRPC_DATA"


@dataclass(frozen=True)
class TrainConfig:
    """One fine-tuning run. Every field has a CLI flag of the same name (dashes for underscores)."""

    model: str = "bert-base-uncased"  # Hub id, local folder, or preset "minilm" (offline)
    data: str = "hub"  # "hub" (nyu-mll/glue), a GLUE MRPC folder, or a raw MSR folder
    loop: str = "manual"  # manual | accelerate | trainer, or a user's adapter: file.py:adapter, package.module:adapter
    epochs: int = 3  # walkthrough: 3
    batch_size: int = 8  # per device, per micro-batch; walkthrough: 8
    eval_batch_size: int = 32  # evaluation only: does not change the recipe, just fewer steps
    lr: float = 5e-5  # AdamW peak learning rate; walkthrough: 5e-5
    weight_decay: float = 0.0  # walkthrough: none; when set, biases and LayerNorm are exempt
    scheduler: str = "linear"  # transformers.get_scheduler name; walkthrough: linear
    warmup_ratio: float = 0.0  # fraction of optimizer steps spent warming up; walkthrough: 0
    warmup_steps: int = 0  # absolute warmup steps; set this or warmup_ratio, not both
    grad_accum: int = 1  # micro-batches per optimizer step
    max_grad_norm: Optional[float] = None  # gradient clipping; walkthrough: none
    mixed_precision: str = "no"  # no | bf16 | fp16 (fp16 needs CUDA); weights stay fp32
    max_length: Optional[int] = None  # truncation length; None: the model's limit (512 for BERT)
    pad_to_multiple_of: Optional[int] = None  # collator padding granularity (8 helps tensor cores)
    group_by_length: bool = False  # shuffled buckets of similar lengths: less padding, same randomness
    dropout: Optional[float] = None  # every dropout rate of the model; None: the checkpoint's own (walkthrough)
    freeze_layers: int = 0  # embeddings and the first N encoder layers get no gradient; walkthrough: 0
    seed: int = 42  # model head init, dropout and data order all derive from it
    max_train_samples: Optional[int] = None  # first N training rows, for quick runs
    device: str = "auto"  # auto | cpu | cuda
    output_dir: str = "mrpc-output"  # report.json, curves.png, model/
    overwrite: bool = False  # allow replacing a finished run in output_dir
    checkpoint_every: Optional[str] = None  # "epoch" or a number of optimizer steps; None: no checkpoints
    keep_checkpoints: int = 2  # checkpoints kept: the newest and one to fall back to if it is damaged
    resume: bool = False  # continue from the newest whole checkpoint in output_dir
    num_workers: int = 0  # DataLoader workers; 0 keeps collation in the training process
    log_every: int = 20  # optimizer steps between progress-bar loss updates (each one syncs)

    def __post_init__(self) -> None:
        _check_types(self)
        if self.loop not in LOOPS and ":" not in self.loop:
            raise ConfigError(f"--loop must be one of {', '.join(LOOPS)} or an adapter (file.py:adapter, package.module:adapter), "
                              f"got {self.loop!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"--mixed-precision must be one of {', '.join(PRECISIONS)}, got {self.mixed_precision!r}"
            )
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        for name in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "log_every", "keep_checkpoints"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{_flag(name)} must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.warmup_steps and self.warmup_ratio:
            raise ConfigError("give --warmup-steps or --warmup-ratio, not both")
        for name in ("max_grad_norm", "max_length", "pad_to_multiple_of", "max_train_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{_flag(name)} must be positive when given, got {value}")
        if self.max_length is not None and self.max_length < 8:
            raise ConfigError(f"--max-length must leave room for [CLS] and two [SEP]s; got {self.max_length}, use >= 8")
        if self.checkpoint_every is not None:
            from mrpc_check.pipeline.checkpoint import parse_every

            parse_every(self.checkpoint_every)
            if self.loop == "trainer":
                raise ConfigError("--checkpoint-every works with --loop manual or accelerate (Trainer keeps its own checkpoints)")
        if self.resume and self.loop == "trainer":
            raise ConfigError("--resume works with --loop manual or accelerate (Trainer keeps its own checkpoints)")
        if self.resume and self.overwrite:
            raise ConfigError("--resume continues the run in --output-dir and --overwrite replaces it: pass one")
        if self.num_workers < 0:
            raise ConfigError(f"--num-workers must be >= 0, got {self.num_workers}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), or none for the checkpoint's own; got {self.dropout}")
        if self.freeze_layers < 0:
            raise ConfigError(f"--freeze-layers must be >= 0, got {self.freeze_layers}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _check_types(cfg: TrainConfig) -> None:
    """Reject wrong types early: a string where a number belongs would fail deep inside torch."""
    hints = {f.name: f.type for f in dataclasses.fields(cfg)}
    for name, hint in hints.items():
        value = getattr(cfg, name)
        optional = "Optional" in hint
        if value is None:
            if optional:
                continue
            raise ConfigError(f"--{_flag(name)} needs a value")
        base = hint.replace("Optional[", "").rstrip("]")
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
        }[base]
        if not ok:
            raise ConfigError(f"--{_flag(name)} must be {base}, got {type(value).__name__} {value!r}")


def make_config(base: Optional[TrainConfig] = None, **overrides) -> TrainConfig:
    """Build a config from overrides; unknown keys raise ConfigError.

    ``data=None`` falls back to the ``MRPC_DATA`` environment variable, then to "hub".
    """
    base = base or TrainConfig()
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    if "data" in overrides and overrides["data"] is None:
        overrides["data"] = default_data_source()
    return dataclasses.replace(base, **overrides)


# The one documented default: the GLUE MRPC folder of a `shared/` beside the checkout.
SHARED_DATA = os.path.join("..", "shared", "data", "glue", "MRPC")


def discover_data(given: Optional[str] = None, *bases: str) -> Optional[str]:
    """Where MRPC comes from, the same for the CLI, ``scripts/train.sh`` and pytest.

    In order: the flag (``--data``, ``--mrpc-data``), ``$MRPC_DATA``, then ``../shared/data/glue/MRPC``
    beside the current folder, beside each of ``bases`` (pytest's rootdir), or beside the checkout
    this package runs from (an editable install), wherever it holds ``train.tsv``; else None.
    """
    if given:
        return given
    if os.environ.get(DATA_ENV):
        return os.environ[DATA_ENV]
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for base in (os.getcwd(), *bases, checkout):
        folder = os.path.normpath(os.path.join(base, SHARED_DATA))
        if os.path.isfile(os.path.join(folder, "train.tsv")):
            return folder
    return None


def default_data_source() -> str:
    """--data when not given: :func:`discover_data`'s answer, else the Hub (nyu-mll/glue)."""
    return discover_data() or "hub"


def recipe_from_file(path: str) -> dict:
    """The recipe in a JSON or TOML file (a report.json's ``config`` too), as TrainConfig keys.

    Raises:
        ConfigError: unreadable, not JSON/TOML, or not a table of settings.
    """
    import json
    from pathlib import Path

    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read ({exc.strerror}): pass a JSON or TOML file") from exc
    try:
        if path.endswith(".toml"):
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            values = tomllib.loads(text)
        else:
            values = json.loads(text)
    except ImportError:
        raise ConfigError(f"--config {path}: TOML needs Python 3.11 or `pip install tomli`; or pass JSON") from None
    except ValueError as exc:
        raise ConfigError(f"--config {path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'} ({exc}): fix the file") from exc
    if isinstance(values, dict) and isinstance(values.get("config"), dict):
        values = values["config"]  # a whole report.json
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected a table of settings, got {type(values).__name__}")
    return {k: v for k, v in values.items() if k not in ("overwrite", "resume")}  # per invocation, never inherited
