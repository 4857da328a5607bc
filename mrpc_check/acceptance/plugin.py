"""pytest plugin: markers, ``--mrpc-*`` options and fixtures for MRPC fine-tuning suites.

Registered under ``[project.entry-points.pytest11]``, so installing the package
gives any suite:

* markers ``slow``, ``gpu`` (skipped with a reason where torch sees no CUDA) and ``distributed``;
* options ``--mrpc-data``, ``--mrpc-model``, ``--mrpc-checkpoint``, ``--mrpc-min-f1``,
  ``--mrpc-min-accuracy``, ``--mrpc-floor-on``, ``--mrpc-max-gap``, ``--mrpc-seeds``,
  ``--mrpc-sweep-rule``, ``--mrpc-report``;
* fixtures ``mrpc_data_source``, ``mrpc_raw``, ``mrpc_model``, ``mrpc_checkpoint``,
  ``mrpc_tokenizer``, ``mrpc_min_f1``, ``mrpc_min_accuracy``, ``mrpc_floors``, ``mrpc_seed``
  (parametrized over ``--mrpc-seeds``), ``mrpc_device``, ``mrpc_record``, ``tiny_model_factory``,
  and for the check battery ``mrpc_loop`` (the adapter; override it in your conftest.py) and
  ``mrpc_battery``;
* a sweep verdict at the end of the session when tests recorded several seeds of one loop.

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
    group.addoption("--mrpc-checkpoint", default=None, metavar="DIR",
                    help="an already fine-tuned model to judge as it is (seconds; no training); the fine-tuning tests skip")
    group.addoption("--mrpc-floor-on", default="point", choices=("point", "lower"),
                    help="floors apply to the estimate, or to the lower end of its bootstrap 95%% interval [%(default)s]")
    group.addoption("--mrpc-max-gap", type=float, default=None, metavar="F",
                    help="largest |validation F1 - test F1| allowed when the data has a labelled test split [off]")
    group.addoption("--mrpc-seeds", default="1", metavar="N|LIST",
                    help="seeds per fine-tuning test: a count N (seeds 42..42+N-1) or a list such as 1,2,3 or 1-5; each seed "
                         "is its own test, so -n spreads them over xdist workers [%(default)s]")
    group.addoption("--mrpc-sweep-rule", default="median", choices=("median", "all"),
                    help="with several seeds: median (no degenerate seed, the median clears the floors) or all [%(default)s]")
    group.addoption("--mrpc-loops", default="manual", metavar="LIST",
                    help="loops the slow tier fine-tunes in full at the walkthrough recipe: manual, accelerate, or manual,accelerate; "
                         "the two loops are held equal step by step on the real model either way [%(default)s]")
    from mrpc_check.acceptance.behaviour import MARGIN, TEST_NAMES, THRESHOLDS  # light: no torch

    for name in TEST_NAMES:
        default = THRESHOLDS[name]
        group.addoption(f"--mrpc-behaviour-{name.replace('_', '-')}", default=None, metavar="RATE|YARDSTICK-POINTS|none",
                        help=f"behaviour test {name}: failure rate above which it fails (0.15), a yardstick less some "
                             f"points (overlap-0.2, unedited-0.02), or none to report it [{'none' if default is None else default}]")
    group.addoption("--mrpc-behaviour-margin", type=float, default=MARGIN, metavar="P",
                    help="behaviour DIR tests: how far P(equivalent) must fall [%(default)s]")
    group.addoption("--mrpc-report", default=None, metavar="FILE", help="append each acceptance run's figures to FILE as JSON lines")
    group.addoption("--mrpc-arch", default="bert", choices=("bert", "roberta", "distilbert"),
                    help="tiny model family the check battery trains [%(default)s]")
    group.addoption("--mrpc-strict", action="store_true",
                    help="a check's warning (a confined, graded effect such as loss / accum) fails its test [off: it passes with a warning]")
    group.addoption("--mrpc-loop", default=None, metavar="MODULE:ADAPTER",
                    help="loop the check battery verifies (and the slow tier fine-tunes): package.module:adapter, file.py:adapter, "
                         "or manual/accelerate/trainer/example; needed outside this repository [inside it: manual]")


def pytest_configure(config):
    """Register the markers, and refuse a bad --mrpc-seeds list as a usage error before collection."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    seeds_from(config.getoption("--mrpc-seeds"))  # a bad list is a usage error now, not a collection error
    loops_from(config.getoption("--mrpc-loops"))
    config.pluginmanager.register(SeedSweep(config), "mrpc-seed-sweep")
    config.pluginmanager.register(CheckpointJudged(config), "mrpc-checkpoint-judged")
    from mrpc_check.checks.pytest_route import BatteryRoute, load_loop

    load_loop(config)  # a wrong --mrpc-loop is one usage line now, not one set-up error per check
    config.pluginmanager.register(BatteryRoute(config), "mrpc-battery-route")


def seeds_from(text: str) -> list:
    """``--mrpc-seeds``: a bare count N means the walkthrough's seed 42 and the next N-1; else a seed list."""
    from mrpc_check.errors import ConfigError
    from mrpc_check.acceptance.sweep import parse_seeds

    try:
        if text.strip().isdigit():
            count = int(text)
            if count <= 0:
                raise ConfigError(f"--mrpc-seeds takes a positive count or a seed list, got {text!r}")
            return list(range(42, 42 + count))
        return parse_seeds(text)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


ACCEPTANCE_LOOPS = ("manual", "accelerate")


def loops_from(text: str) -> list:
    """``--mrpc-loops``: a comma list of the loops the slow tier trains in full."""
    loops = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [loop for loop in loops if loop not in ACCEPTANCE_LOOPS]
    if not loops or unknown:
        raise pytest.UsageError(f"--mrpc-loops {text!r}: give manual, accelerate or manual,accelerate")
    return loops


def pytest_generate_tests(metafunc):
    # Each seed is its own test, so pytest-xdist spreads a sweep over workers without a scheduler of ours.
    if "mrpc_seed" in metafunc.fixturenames:
        seeds = seeds_from(metafunc.config.getoption("--mrpc-seeds"))
        metafunc.parametrize("mrpc_seed", seeds, ids=[f"seed{s}" for s in seeds])


class SeedSweep:
    """Gathers the runs that acceptance tests report (``("mrpc_run", entry)`` user properties) and,
    with several seeds of one loop, judges the sweep once at the end of the session.

    Registered per session in :func:`pytest_configure`. Reports reach the main process from
    pytest-xdist workers too, with their user properties, so the verdict covers every worker.
    """

    def __init__(self, config) -> None:
        self.config = config
        self.runs: list = []
        self.lines: list = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            self.runs.extend(value for key, value in report.user_properties if key == "mrpc_run")

    def pytest_sessionfinish(self, session, exitstatus):
        if hasattr(self.config, "workerinput") or not self.runs:
            return  # an xdist worker: the main process judges
        from mrpc_check.acceptance.sweep import format_summary, summarise

        failed = False
        for loop in sorted({r["loop"] for r in self.runs}):
            runs = sorted((r for r in self.runs if r["loop"] == loop), key=lambda r: r["seed"])
            if len(runs) < 2:
                continue  # one seed was judged by its own test
            summary = summarise(runs, _floors(self.config), self.config.getoption("--mrpc-sweep-rule"))
            self.lines.append(f"sweep, {loop} loop:\n" + format_summary({"runs": runs, "summary": summary, "baseline": runs[0]["baseline"]}))
            failed |= not summary["passed"]
            path = self.config.getoption("--mrpc-report")
            if path:
                import json

                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"sweep": loop, **summary}) + "\n")
        if failed and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if self.lines:
            terminalreporter.section("mrpc_check seed sweep")
            for line in self.lines:
                terminalreporter.write_line(line)


class CheckpointJudged:
    """Never a vacuous green: ``--mrpc-checkpoint DIR`` given and no test judged it fails the session.

    A `-m` that deselects the checkpoint test, or a run where every test skipped, would otherwise
    exit 0 having judged nothing. The checkpoint test records ``("mrpc_checkpoint_judged", DIR)``
    as a user property once the model is scored; reports carry it from xdist workers too.
    """

    def __init__(self, config) -> None:
        self.config = config
        self.judged = False
        self.line = ""

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and any(key == "mrpc_checkpoint_judged" for key, _ in report.user_properties):
            self.judged = True

    def pytest_sessionfinish(self, session, exitstatus):
        path = self.config.getoption("--mrpc-checkpoint")
        if not path or self.judged or hasattr(self.config, "workerinput"):
            return
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            data = self.config.getoption("--mrpc-data")
            self.line = (f"--mrpc-checkpoint {path} was given but no test judged it (deselected by -m or -k, or skipped): run "
                         f"pytest --pyargs mrpc_check.acceptance --mrpc-checkpoint {path}" + (f" --mrpc-data {data}" if data else ""))
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if self.line:
            terminalreporter.write_line(f"mrpc_check: {self.line}", red=True)


def _floors(config):
    from mrpc_check.errors import ConfigError
    from mrpc_check.acceptance.floors import Floors

    try:
        return Floors(min_f1=config.getoption("--mrpc-min-f1"), min_accuracy=config.getoption("--mrpc-min-accuracy"),
                      on=config.getoption("--mrpc-floor-on"), max_gap=config.getoption("--mrpc-max-gap"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


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


def pytest_collection_finish(session):
    """No silent green: every selected test needs MRPC and none is found -> one usage line (exit 4), not a run of skips.

    ``pytest --pyargs mrpc_check.acceptance`` (or ``-m slow``) selects the acceptance tests explicitly; a run of
    skips would exit 0 having judged nothing. Inside a broader run (some tests need no data) they skip with the fix.
    """
    items = [item for item in session.items if not item.get_closest_marker("skip")]  # a test skipped anyway (no CUDA) needs nothing
    if not items or not all("mrpc_data_source" in getattr(item, "fixturenames", ()) for item in items):
        return
    from mrpc_check.pipeline.config import discover_data

    if not discover_data(session.config.getoption("--mrpc-data"), str(session.config.rootpath)):
        raise pytest.UsageError(f"no MRPC data for the {len(items)} selected test(s), which all need it: pass --mrpc-data DIR or "
                                f"set {DATA_ENV} to a GLUE MRPC folder (e.g. ../shared/data/glue/MRPC)")


@pytest.fixture(scope="session")
def mrpc_data_source(pytestconfig) -> str:
    """The MRPC source: --mrpc-data, $MRPC_DATA, or ../shared/data/glue/MRPC beside the checkout; skips with the fix otherwise."""
    from mrpc_check.pipeline.config import discover_data

    source = discover_data(pytestconfig.getoption("--mrpc-data"), str(pytestconfig.rootpath))
    if not source:
        pytest.skip(f"no MRPC data: pass --mrpc-data DIR or set {DATA_ENV} to a GLUE MRPC folder "
                    "(found by itself at ../shared/data/glue/MRPC beside the checkout)")
    return source


@pytest.fixture(scope="session")
def mrpc_raw(mrpc_data_source):
    """The MRPC ``DatasetDict`` loaded from :func:`mrpc_data_source`."""
    from mrpc_check.pipeline.data import load_mrpc

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
def mrpc_floors(pytestconfig):
    """The acceptance rules from --mrpc-min-f1, --mrpc-min-accuracy, --mrpc-floor-on, --mrpc-max-gap."""
    return _floors(pytestconfig)


@pytest.fixture(scope="session")
def mrpc_behaviour(pytestconfig):
    """The behaviour suite (:class:`mrpc_check.acceptance.behaviour.Suite`) from the --mrpc-behaviour-* options."""
    from mrpc_check.acceptance.behaviour import TEST_NAMES, suite_from
    from mrpc_check.errors import ConfigError

    given = {name: pytestconfig.getoption(f"--mrpc-behaviour-{name.replace('_', '-')}") for name in TEST_NAMES}
    try:
        return suite_from({name: rate for name, rate in given.items() if rate is not None},
                          pytestconfig.getoption("--mrpc-behaviour-margin"))
    except ConfigError as exc:
        raise pytest.UsageError(f"--mrpc-behaviour-*: {exc}") from None


@pytest.fixture(scope="session")
def mrpc_checkpoint(pytestconfig) -> str:
    """The fine-tuned model to judge as it is (--mrpc-checkpoint); skips with the fix when not given."""
    path = pytestconfig.getoption("--mrpc-checkpoint")
    if not path:
        pytest.skip("no fine-tuned model to judge as it is: pass --mrpc-checkpoint DIR (a folder saved by mrpc-check train, OUTPUT/model)")
    return path


@pytest.fixture(scope="session")
def mrpc_device() -> str:
    """``cpu``, or ``cuda`` with this xdist worker's GPU selected: worker gwN takes GPU N mod the GPU count."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    torch.cuda.set_device(int(worker[2:]) % torch.cuda.device_count())  # "cuda" then means this GPU, for Accelerate too
    return "cuda"


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
    from mrpc_check.pipeline.model import resolve_checkpoint

    try:
        return resolve_checkpoint("minilm")
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def mrpc_tokenizer(mrpc_vocab_checkpoint):
    """The real uncased WordPiece tokenizer, loaded from disk."""
    from mrpc_check.pipeline.model import load_tokenizer

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
    """The adapter under test, from --mrpc-loop (loaded when pytest configured: a wrong one never gets here);
    this repository's manual loop without it. Define your own ``mrpc_loop`` fixture to pass one directly."""
    from mrpc_check.checks.contract import load_adapter
    from mrpc_check.checks.pytest_route import DEFAULT_INSIDE, load_loop

    return load_loop(pytestconfig) or load_adapter(DEFAULT_INSIDE)


@pytest.fixture(scope="session")
def mrpc_battery(pytestconfig, mrpc_loop, mrpc_tokenizer):
    """A :class:`mrpc_check.checks.Battery` for ``mrpc_loop`` on --mrpc-arch (tiny BERT over the real vocabulary by default)."""
    from mrpc_check.checks.harness import ARCHES, Battery, bert_arch

    import torch

    from mrpc_check.checks.contract import AdapterError

    name = pytestconfig.getoption("--mrpc-arch")
    # One thread, as `mrpc-check verify` runs the battery: width-32 models gain nothing from a second
    # one and lose much when another process holds a core (run_battery's comment has the figures).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        battery = Battery(mrpc_loop, bert_arch(mrpc_tokenizer) if name == "bert" else ARCHES[name]())
    except AdapterError as exc:
        torch.set_num_threads(threads)
        raise pytest.UsageError(str(exc)) from None
    yield battery
    battery.close()
    torch.set_num_threads(threads)
