"""The root conftest's tiers, as a user's command line meets them (pytester runs an inner pytest
with this project's conftest.py): which tests a command selects, and when xdist spreads them."""

from pathlib import Path

import pytest

ROOT_CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
TESTS = """
import pytest

def test_unit():
    pass

@pytest.mark.integration
def test_process():
    pass

@pytest.mark.slow
def test_acceptance():
    pass
"""


@pytest.fixture
def project(pytester):
    pytester.makeconftest(ROOT_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\nmarkers =\n"
                     "    slow: s\n    gpu: g\n    distributed: d\n    integration: i\n")
    pytester.makepyfile(test_tiers_inner=TESTS)
    return pytester


@pytest.mark.parametrize("args, ran", [
    (["-m", "not slow"], {"test_unit"}),
    (["-m", "not slow", "--integration"], {"test_unit", "test_process"}),
    (["-m", "integration"], {"test_process"}),
    (["-m", "slow"], {"test_acceptance"}),
    ([], {"test_unit", "test_acceptance"}),
])
def test_integration_tests_run_only_when_asked(project, args, ran):
    result = project.runpytest_inprocess(*args, "-p", "no:xdist", "-v")
    passed = {r.nodeid.split("::")[-1] for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call" and r.passed}
    assert passed == ran
    header = "integration tests (real processes; outcome checks on other model families): left out; add --integration to run them"
    assert (header in result.stdout.str()) == ("test_process" not in ran)


@pytest.mark.parametrize("args, workers, dist", [
    (["-m", "not slow"], "auto", "loadgroup"),  # tests that share a battery stay on the worker that built it
    (["-m", "not slow", "--integration"], "auto", "loadgroup"),
    (["-m", "not slow", "-n", "2"], 2, "loadgroup"),  # what tox passes
    (["-m", "not slow", "-n", "2", "--dist", "load"], 2, "load"),  # the user's choice stands
    (["-m", "slow"], None, "no"),  # one long run: both cores in one process
    (["-m", "slow and not gpu"], None, "no"),
    (["-m", "not slow", "-n", "0"], 0, "no"),  # the user's choice stands
    (["-m", "not slow", "--pdb"], None, "no"),
])
def test_xdist_spreads_the_quick_tiers_only(project, monkeypatch, args, workers, dist):
    pytest.importorskip("xdist", reason="pip install pytest-xdist (the test extra) to check the default spreading")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this suite may itself run on a worker
    hooks = {}
    exec(compile(ROOT_CONFTEST, "conftest.py", "exec"), hooks)
    config = project.parseconfig(*args)
    hooks["pytest_cmdline_main"](config)
    assert config.option.numprocesses == workers
    assert config.option.dist == dist


def test_one_process_runs_tests_that_carry_an_xdist_group(project):
    """-p no:xdist (or xdist not installed): the battery groups' marker must not stop a strict-markers run."""
    project.makepyfile(test_grouped="import pytest\n\n@pytest.mark.xdist_group('battery-manual')\ndef test_grouped():\n    pass\n")
    result = project.runpytest_inprocess("test_grouped.py", "-p", "no:xdist")
    result.assert_outcomes(passed=1)


def test_what_collection_imported_is_frozen_before_the_first_test(project):
    """The root conftest freezes collection's objects (gc.freeze): full collections then walk only what tests make."""
    import gc

    project.makepyfile(test_frozen="import gc\n\ndef test_frozen():\n    assert gc.get_freeze_count() > 1000\n")
    gc.unfreeze()  # this suite's own freeze would pass the inner test whatever the inner conftest does
    try:
        result = project.runpytest_inprocess("test_frozen.py", "-p", "no:xdist")
    finally:
        gc.collect()
        gc.freeze()
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("args, examples", [(["-m", "not slow"], 20), (["-m", "not slow", "--integration"], 100),
                                            (["-m", "not slow", "--hypothesis-profile", "default"], 100)])
def test_properties_sample_fewer_inputs_in_the_default_run_than_in_ci(project, args, examples):
    from hypothesis import settings

    project.makepyfile(test_examples="from hypothesis import settings\n\n"
                                     "def test_examples():\n    print('examples', settings.default.max_examples)\n")
    outer = settings.get_current_profile_name()  # the inner run loads its profile into this process too
    try:
        result = project.runpytest_inprocess("test_examples.py", *args, "-p", "no:xdist", "-s")
    finally:
        settings.load_profile(outer)
    result.stdout.fnmatch_lines([f"*examples {examples}*"])


def test_tests_that_read_a_shared_training_run_share_an_xdist_group(request):
    """Each module's tests that read one of its trained-once fixtures run on one worker (it trains once there)."""
    suite = request.config.pluginmanager.get_plugin(str(Path(__file__).parent / "conftest.py"))
    readers = [i for i in request.session.items if suite.SHARED_RUNS & set(i.fixturenames)]
    if not readers:
        pytest.skip("no test reading a shared run collected in this run: run it beside tests/pipeline/test_checkpoint.py "
                    "or tests/checks/test_recipe_flags.py (the default run collects both)")
    for item in readers:
        groups = [m.args[0] for m in item.iter_markers("xdist_group")]
        assert groups == [f"runs-of-{item.nodeid.split('::')[0]}"], (item.nodeid, groups)


def test_what_earlier_modules_left_alive_is_frozen_at_the_next_module(project):
    """The root conftest freezes again at each module's first test: a module's survivors leave the collector's walks."""
    project.makepyfile(
        test_a_keeps="import builtins\n\ndef test_keeps():\n    builtins._mrpc_kept = [object() for _ in range(3)]\n",
        test_b_reads="import builtins, gc\n\ndef test_frozen():\n"
                     "    kept = builtins._mrpc_kept\n    del builtins._mrpc_kept\n"
                     "    assert not any(o is kept for o in gc.get_objects())  # frozen objects are not listed\n",
    )
    result = project.runpytest_inprocess("test_a_keeps.py", "test_b_reads.py", "-p", "no:xdist")
    result.assert_outcomes(passed=2)
