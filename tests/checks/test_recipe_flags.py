"""Check 12: every recipe flag of `mrpc-check train` visibly changes the run (observed end to end)."""

import pytest

from mrpc_check.checks.recipe import FLAGS, flag_verdict, observe_train


@pytest.fixture(scope="module")
def baseline(tiny_model_dir, glue_dir, tmp_path_factory):
    return observe_train(tiny_model_dir, glue_dir, str(tmp_path_factory.mktemp("baseline")))


@pytest.mark.parametrize("flag", FLAGS, ids=[f.name for f in FLAGS])
def test_flag_reaches_the_run(flag, baseline, tiny_model_dir, glue_dir, tmp_path):
    observed = observe_train(tiny_model_dir, glue_dir, str(tmp_path / "run"), *flag.args)
    verdict = flag_verdict(flag, observed, baseline)
    assert verdict.passed, verdict.message()


def test_an_ignored_flag_fails(baseline):
    """The verdict can fail: the baseline itself, passed off as the run with a flag, shows no effect."""
    failing = [flag_verdict(f, baseline, baseline) for f in FLAGS]
    assert all(not v.passed for v in failing), [v.message() for v in failing if v.passed]
    assert "silently ignored" in failing[0].bug
