"""pytest plugin: markers, ``--mrpc-*`` options and fixtures for MRPC fine-tuning suites.

Registered under ``[project.entry-points.pytest11]``, so installing the package
gives any suite:

* markers ``slow``, ``gpu`` (skipped with a reason where torch sees no CUDA) and ``distributed``;
* options ``--mrpc-data``, ``--mrpc-model``, ``--mrpc-min-f1``, ``--mrpc-min-accuracy``, ``--mrpc-report``;
* fixtures ``mrpc_data_source``, ``mrpc_raw``, ``mrpc_model``, ``mrpc_tokenizer``,
  ``mrpc_min_f1``, ``mrpc_min_accuracy``, ``mrpc_record``, ``tiny_model_factory``, and for the
  check battery ``mrpc_loop`` (the adapter; override it in your conftest.py) and ``mrpc_battery``.

Heavy imports (torch, transformers, datasets) happen inside hooks and fixtures,
so loading the plugin costs nothing for suites that do not use it.
"""

from __future__ import annotations

import os

import pytest

DATA_ENV = "MRPC_DATA"  # same variable as the CLI's --data fallback
DEFAULT_MODEL = "minilm"
# The acceptance floors: well above the majority-class baseline (F1 0.812, accuracy 0.684).
DEFAULT_MIN_F1 = 0.85
DEFAULT_MIN_ACCURACY = 0.78

MARKERS = {
    "slow": "fine-tunes a pretrained model on real MRPC (minutes); deselect with -m 'not slow'",
    "gpu": "needs CUDA; skipped with a reason where torch sees none",
    "distributed": "starts several processes through Accelerate (gloo on CPU)",
}


def pytest_addoption(parser):
    group = parser.getgroup("mrpc-check", "MRPC fine-tuning checks (mrpc_check)")
    group.addoption("--mrpc-data", default=None, help=f"MRPC source: GLUE MRPC folder, raw MSR folder or 'hub' [${DATA_ENV}]")
    group.addoption("--mrpc-model", default=DEFAULT_MODEL, help="checkpoint for acceptance runs: Hub id, folder or 'minilm' [%(default)s]")
    group.addoption("--mrpc-min-f1", type=float, default=DEFAULT_MIN_F1, help="validation F1 an acceptance run must reach [%(default)s]")
    group.addoption("--mrpc-min-accuracy", type=float, default=DEFAULT_MIN_ACCURACY, help="validation accuracy floor [%(default)s]")
    group.addoption("--mrpc-report", default=None, metavar="FILE", help="append each acceptance run's figures to FILE as JSON lines")
    group.addoption("--mrpc-arch", default="bert", choices=("bert", "roberta", "distilbert"),
                    help="tiny model family the check battery trains [%(default)s]")
    group.addoption("--mrpc-loop", default="manual", metavar="MODULE:ADAPTER",
                    help="loop the check battery verifies: package.module:adapter, file.py:adapter, or manual/accelerate/trainer/example [%(default)s]")


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False; run `pytest -m gpu` on a machine with a GPU and a CUDA build of torch")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def mrpc_data_source(pytestconfig) -> str:
    """The MRPC source from --mrpc-data or $MRPC_DATA; skips with the fix when neither is set."""
    source = pytestconfig.getoption("--mrpc-data") or os.environ.get(DATA_ENV)
    if not source:
        pytest.skip(f"no MRPC data: pass --mrpc-data DIR or set {DATA_ENV} to a GLUE MRPC folder (e.g. ../shared/data/glue/MRPC)")
    return source


@pytest.fixture(scope="session")
def mrpc_raw(mrpc_data_source):
    """The MRPC ``DatasetDict`` loaded from :func:`mrpc_data_source`."""
    from mrpc_check.data import load_mrpc

    return load_mrpc(mrpc_data_source)


@pytest.fixture(scope="session")
def mrpc_model(pytestconfig) -> str:
    """The checkpoint for acceptance runs (--mrpc-model)."""
    return pytestconfig.getoption("--mrpc-model")


@pytest.fixture(scope="session")
def mrpc_min_f1(pytestconfig) -> float:
    return pytestconfig.getoption("--mrpc-min-f1")


@pytest.fixture(scope="session")
def mrpc_min_accuracy(pytestconfig) -> float:
    return pytestconfig.getoption("--mrpc-min-accuracy")


@pytest.fixture(scope="session")
def mrpc_record(pytestconfig):
    """``record(dict)``: append one acceptance run's figures to --mrpc-report (a no-op without it)."""
    import json

    path = pytestconfig.getoption("--mrpc-report")

    def record(figures: dict) -> None:
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(figures) + "\n")

    return record


@pytest.fixture(scope="session")
def mrpc_vocab_checkpoint() -> str:
    """A local folder with the bert-base-uncased WordPiece vocabulary (the offline MiniLM)."""
    from mrpc_check.errors import ModelError
    from mrpc_check.model import resolve_checkpoint

    try:
        return resolve_checkpoint("minilm")
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def mrpc_tokenizer(mrpc_vocab_checkpoint):
    """The real uncased WordPiece tokenizer, loaded from disk."""
    from mrpc_check.model import load_tokenizer

    return load_tokenizer(mrpc_vocab_checkpoint)


@pytest.fixture(scope="session")
def tiny_model_factory(mrpc_tokenizer):
    """``make(seed=0, **config_overrides)`` -> a fresh tiny BERT classifier over the real vocabulary."""
    from mrpc_check.testing import make_tiny_model

    def make(seed: int = 0, **overrides):
        return make_tiny_model(len(mrpc_tokenizer), seed=seed, **overrides)

    return make


@pytest.fixture(scope="session")
def mrpc_loop(pytestconfig):
    """The adapter under test, from --mrpc-loop; define your own ``mrpc_loop`` fixture to pass one directly."""
    from mrpc_check.checks.contract import AdapterError, load_adapter

    try:
        return load_adapter(pytestconfig.getoption("--mrpc-loop"))
    except AdapterError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def mrpc_battery(pytestconfig, mrpc_loop, mrpc_tokenizer):
    """A :class:`mrpc_check.checks.Battery` for ``mrpc_loop`` on --mrpc-arch (tiny BERT over the real vocabulary by default)."""
    from mrpc_check.checks.harness import ARCHES, Battery, bert_arch

    name = pytestconfig.getoption("--mrpc-arch")
    battery = Battery(mrpc_loop, bert_arch(mrpc_tokenizer) if name == "bert" else ARCHES[name]())
    yield battery
    battery.close()
