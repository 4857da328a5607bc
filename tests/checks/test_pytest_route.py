"""The battery's pytest route as a team's CI job sees it (pytester runs an inner pytest in a folder of its own)."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# Imported here first: in-process inner runs drop what they imported, and compiled extensions cannot load twice.
import datasets  # noqa: F401
import torch  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def suite(pytester):
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    return pytester


def test_a_wrong_loop_is_one_usage_line_naming_the_pytest_option(suite):
    result = suite.runpytest_inprocess("--pyargs", "mrpc_check.checks", "--mrpc-loop", "nowhere.py:adapter")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # 4: a set-up mistake, not "your loop has a bug" (1)
    result.stderr.fnmatch_lines(["ERROR: --mrpc-loop 'nowhere.py:adapter': no file*give an existing .py file*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str() and "setup" not in result.stdout.str()


def test_outside_this_repository_the_loop_must_be_named(suite):
    """Without --mrpc-loop the battery would verify the project's own loop: a CI typo would stay green forever."""
    result = suite.runpytest_inprocess("--pyargs", "mrpc_check.checks")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: the check battery verifies the loop you name: pass --mrpc-loop package.module:adapter*"])


@pytest.mark.integration
def test_outside_this_repository_the_loop_must_be_named_under_xdist(suite):
    """Under pytest-xdist the workers collect; the controller still stops with one line and exit 4."""
    result = suite.runpytest_subprocess("--pyargs", "mrpc_check.checks", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["*the check battery verifies the loop you name: pass --mrpc-loop*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_inside_this_repository_the_header_names_the_default_loop(suite):
    result = suite.runpytest_inprocess("--pyargs", "mrpc_check.checks", "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"),
                                       "--co", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["mrpc_check battery: verifying manual (this repository's reference loop: no --mrpc-loop given)"])


def test_junit_carries_each_verdict_a_stable_classname_and_the_warning(suite, tmp_path):
    """One battery: the verdicts as properties, the loop named for the suite and each case, a WARN as <system-out>,
    the classname the same wherever pytest runs, and no xunit2 warning under pytest's default junit family."""
    junit = tmp_path / "junit.xml"
    loop = "mrpc_check.checks.broken:ClipsWhenRecipeHasNone"
    result = suite.runpytest_inprocess("--pyargs", "mrpc_check.checks", "--mrpc-loop", loop, "-k", "clipping or modes or effective_recipe",
                                       f"--junitxml={junit}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"mrpc_check battery: verifying {loop}", "*MrpcCheckWarning: clipping: WARN*",
                                 "*mrpc_check effective recipe*"])
    assert "xunit2" not in result.stdout.str()
    root = ET.parse(junit).getroot()
    assert {(p.get("name"), p.get("value")) for p in root.iter("testsuite").__next__().find("properties")} == {("mrpc_loop", loop)}
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert {case.get("classname") for case in cases.values()} == {"mrpc_check.checks.test_battery"}

    def properties(name):
        return {p.get("name"): p.get("value") for p in cases[name].find("properties")}

    clipping = properties("test_check[clipping]")
    assert clipping["mrpc_check"] == "clipping" and clipping["mrpc_status"] == "warn" and clipping["mrpc_loop"] == loop
    assert "clips at norm 0.5" in clipping["mrpc_bug"] and "recipe.max_grad_norm" in clipping["mrpc_fix"]
    assert "global norm 0.5" in clipping["mrpc_figure"] and clipping["mrpc_caused_by"] == ""
    assert cases["test_check[clipping]"].find("system-out").text.startswith("clipping: WARN: the loop clips at norm 0.5")
    modes = properties("test_check[modes]")
    assert modes["mrpc_status"] == "pass" and modes["mrpc_bug"] == "" and cases["test_check[modes]"].find("system-out") is None
    assert properties("test_effective_recipe")["mrpc_effective_recipe"].startswith("ClipsWhenRecipeHasNone: effective recipe")


class TestAcceptanceWithoutData:
    @pytest.fixture
    def no_data(self, monkeypatch, tmp_path):
        monkeypatch.delenv("MRPC_DATA", raising=False)
        monkeypatch.setattr("mrpc_check.pipeline.config.SHARED_DATA", str(tmp_path / "nowhere"))

    def test_selected_explicitly_it_fails_with_one_line(self, suite, no_data):
        result = suite.runpytest_inprocess("--pyargs", "mrpc_check.acceptance", "-m", "not gpu")
        assert result.ret == pytest.ExitCode.USAGE_ERROR  # not 8 skips and exit 0
        result.stderr.fnmatch_lines(["ERROR: no MRPC data for the * selected test(s), which all need it: pass --mrpc-data DIR or set MRPC_DATA*"])

    def test_inside_a_broader_run_they_skip_with_the_fix(self, suite, no_data):
        suite.makepyfile(test_other="def test_needs_no_data():\n    pass\n")
        result = suite.runpytest_inprocess("--pyargs", "mrpc_check.acceptance", "test_other.py", "-m", "not gpu", "-rs")
        assert result.ret == pytest.ExitCode.OK
        assert result.parseoutcomes()["passed"] == 1 and result.parseoutcomes()["skipped"] >= 1
        result.stdout.fnmatch_lines(["*no MRPC data: pass --mrpc-data DIR*"])


@pytest.mark.integration
def test_a_conftest_fixture_names_the_loop_under_xdist_too(suite):
    """A team's conftest.py hands its loop over as a mrpc_loop fixture: no --mrpc-loop needed, with -n 2 as without."""
    suite.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def mrpc_loop():
            from mrpc_check.checks.contract import load_adapter

            return load_adapter("example")
        """
    )
    result = suite.runpytest_subprocess("--pyargs", "mrpc_check.checks", "-n", "2", "-k", "modes")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    result.assert_outcomes(passed=1)
