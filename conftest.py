"""Root conftest: thread budget per worker and the commands for each test tier.

Tiers (markers are declared by ``mrpc_check.acceptance.plugin``, ``--strict-markers`` is on):

    pytest -m "not slow"                default: fast, offline, CPU (tiny BERT, real vocabulary); spread over
                                        the cores by pytest-xdist when it is installed (-n 0 or -p no:xdist: one process);
                                        tests marked integration are left out (one header line says so)
    pytest -m "not slow" --integration  the same plus the integration tests: what CI (tox, .ci/run) runs
    pytest -m integration               only those: real processes started, signalled and killed (the CLI,
                                        torchrun, sweeps, pytest itself), resume after SIGKILL/SIGTERM
    pytest -m distributed               2-process Accelerate runs on CPU (gloo)
    pytest -m gpu                       CUDA runners; every test skips with a reason elsewhere
    pytest -m slow                      acceptance: fine-tune MiniLM on real MRPC (manual loop), F1 floor; the Accelerate
                                        loop held to it step by step (--mrpc-loops manual,accelerate: both in full)
    pytest -m slow --mrpc-model DIR --mrpc-min-f1 0.88    the same from another pretrained starting point
    pytest -m slow --mrpc-seeds 5                   the same over 5 seeds; the median must clear the floors
    pytest --pyargs mrpc_check.acceptance --mrpc-checkpoint DIR    a fine-tuned model judged as it is (seconds)

Real MRPC comes from ``--mrpc-data DIR`` or ``MRPC_DATA`` (e.g. ../shared/data/glue/MRPC);
tests that need it skip with that instruction when neither is set.
"""

import os

import pytest

pytest_plugins = ["pytester"]


def pytest_addoption(parser):
    parser.addoption("--integration", action="store_true",
                     help="also run the tests marked integration (real processes started, signalled, killed; outcome "
                          "checks on other model families; minutes); "
                          "-m integration runs only those")


def _integration_selected(config) -> bool:
    """--integration given, or a -m expression that names the marker (-m integration, -m 'not integration')."""
    return config.getoption("integration") or "integration" in (config.option.markexpr or "")


def pytest_configure(config):
    """Hypothesis examples per property: 20 in the default run, 100 with the integration tests (CI).

    The properties run in every tier; the default run samples fewer inputs per property to stay
    quick, CI explores five times more. --hypothesis-profile NAME still picks another profile.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        # tests/checks/conftest.py groups tests by shared battery; without xdist (-p no:xdist, or not
        # installed) the marker is not registered and --strict-markers would stop the whole run.
        config.addinivalue_line("markers", "xdist_group(name): run on the worker that holds this group (pytest-xdist)")
    if _xdist_controller(config):
        return  # it runs no test: each worker sets its own profile (hypothesis takes 0.7 s to import, before any worker starts)
    from hypothesis import settings

    settings.register_profile("mrpc-default", max_examples=20, deadline=None)
    settings.register_profile("mrpc-thorough", max_examples=100, deadline=None)
    if not getattr(config.option, "hypothesis_profile", None):
        settings.load_profile("mrpc-thorough" if _integration_selected(config) else "mrpc-default")


def _xdist_controller(config) -> bool:
    """This process hands the tests to pytest-xdist workers and runs none itself."""
    workers = getattr(config.option, "numprocesses", None)
    return workers not in (None, 0, "0") and "PYTEST_XDIST_WORKER" not in os.environ


def pytest_report_header(config):
    if not _integration_selected(config):
        return "integration tests (real processes; outcome checks on other model families): left out; add --integration to run them"
    return None


def pytest_collection_modifyitems(config, items):
    """Leave the integration tests out of a run that did not ask for them.

    They run the CLI, torchrun, sweeps and resume after signals as real processes, and the
    battery's outcome checks on RoBERTa and DistilBERT. The bug families they guard in our code
    (resume after a kill, a damaged checkpoint, the folder lock, 2-process training) also have
    in-process tests in the default run, which stays quick without losing what it catches (the
    battery's 2-process checks stay in it: their ranks are forks).
    """
    if _integration_selected(config):
        return
    kept, left = [], []
    for item in items:
        (left if item.get_closest_marker("integration") else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Move what collection imported out of the cyclic garbage collector's reach (``gc.freeze``).

    torch, transformers, datasets and the collected tests are ~450k tracked objects: every full
    collection walks them all, 0.2-0.3 s each, and transformers' Trainer starts each training with
    one (``accelerator.free_memory()`` -> ``gc.collect()``): 27 runs in the quick tier, 8.9 s of one
    process's time. Garbage made during collection is collected first, so nothing frozen is garbage;
    objects the tests make later are collected as usual until their module ends (below).
    """
    _freeze_survivors()


def _freeze_survivors() -> None:
    import gc

    gc.collect()  # first: what is frozen is never collected, so no garbage may be frozen
    gc.freeze()


_MODULE = {"current": None}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """At each test module's first test, what the earlier modules left alive joins the frozen heap.

    That is the session's caches (batteries with their trained models: ~140k objects by the end)
    and the modules imported on first use (Trainer, matplotlib); left unfrozen, every full
    collection walks them again. The previous module's fixtures are torn down by now, and its
    garbage is collected first, so only live objects are frozen.
    """
    module = item.nodeid.split("::")[0]
    if _MODULE["current"] not in (None, module):
        _freeze_survivors()
    _MODULE["current"] = module


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """pytest-xdist by default for the whole suite: `pytest -m "not slow"` as typed uses every core.

    Only when no test paths are named (a single file or test starts faster in one process), and
    before xdist reads its options; an explicit -n (0 included), -p no:xdist, --pdb, or being an
    xdist worker already keeps the user's choice.
    """
    option = config.option
    whole_suite = getattr(config, "args_source", None) in (pytest.Config.ArgsSource.TESTPATHS, pytest.Config.ArgsSource.INVOCATION_DIR)
    # The slow tier is one long run that wants both cores in one process (2 workers x 1 thread
    # would leave it on one core); -m slow --mrpc-seeds N -n N spreads seeds when asked.
    markexpr = getattr(option, "markexpr", "") or ""
    many_short_tests = not markexpr or "not slow" in markexpr or "integration" in markexpr
    if (whole_suite and many_short_tests and config.pluginmanager.hasplugin("xdist") and getattr(option, "numprocesses", None) is None
            and not getattr(option, "usepdb", False) and "PYTEST_XDIST_WORKER" not in os.environ
            and not getattr(option, "collectonly", False)):
        option.numprocesses = "auto"
    # Tests that share a session-scoped run carry an xdist group (tests/checks/conftest.py): keep
    # each group on one worker, unless the user chose how to distribute.
    if getattr(option, "numprocesses", None) not in (None, 0, "0") and getattr(option, "dist", "no") == "no":
        option.dist = "loadgroup"

# Under pytest-xdist each worker gets its share of the cores: 2 workers x 2 threads on 2 cores
# spend more time contending than computing.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch

    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

# Every test runs offline: nothing may reach for the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
