"""A check that cannot judge is not the loop's bug: an exception inside a check, or a 2-process run out of time,
is an `error` verdict, never a root cause, never what another check's failure is blamed on; exit 3 when only
errors occurred (1 stays "the loop has a bug")."""

import dataclasses

import pytest

from mrpc_check.checks.battery import EXIT_ERRORS, check_names, exit_status, format_table, root_causes
from mrpc_check.checks.verdict import REGISTRY, judge

NAMES = check_names(("fast", "gpu"))


def _raise(battery):
    raise ValueError("planted: torch.cat(): expected a non-empty list of Tensors")


@pytest.mark.parametrize("name", NAMES)
def test_an_exception_inside_any_check_is_an_error_and_never_a_root(battery_for, monkeypatch, name):
    """Planted into every check in turn, on the correct manual loop (its runs cached: each case only judges)."""
    battery = battery_for("manual")
    kept = battery.verdicts
    battery.verdicts = {}
    monkeypatch.setitem(REGISTRY, name, dataclasses.replace(REGISTRY[name], run=_raise))
    # The check and every check that rests on it (their prerequisites are judged along): whatever could blame it.
    # (The costly label control is left out as a dependent: it trains for many epochs and blames only as the others do.)
    judged = [name] + [n for n in NAMES if name in REGISTRY[n].rests_on and not REGISTRY[n].costly]
    try:
        verdicts = [judge(battery, n) for n in judged]
    finally:
        battery.verdicts = kept
    got = {v.check: v for v in verdicts}
    assert got[name].status == "error" and "planted" in got[name].figure, got[name].message()
    assert name not in root_causes(verdicts)
    assert not [v.check for v in verdicts if v.caused_by == name]
    assert not [v for v in verdicts if v.status == "fail"], [v.message() for v in verdicts if v.status == "fail"]
    assert exit_status(verdicts) == EXIT_ERRORS
    table = format_table("manual", verdicts)
    assert f"not judged (error, not the loop's bug): {name}" in table and table.splitlines()[-1].endswith("1 could not be judged (error)")


def test_a_failure_beside_an_error_still_exits_1():
    from mrpc_check.checks.verdict import Verdict, error

    verdicts = [error("seed", "the check raised ValueError: x"), Verdict("schedule", "fail", "f", "b", "fix")]
    assert exit_status(verdicts) == 1 and root_causes(verdicts) == ["schedule"]


def test_a_2_process_run_out_of_time_is_an_error_naming_the_limit(battery_for):
    from mrpc_check.checks.distributed import TIMEOUT_ENV
    from mrpc_check.checks.multiprocess import _two

    class Caps:
        distributed = True

    class Fake:
        caps, spec, name = Caps(), "pkg.mod:adapter", "fake"
        _runs = {"_2p": {"error": "the 2 ranks did not finish within 300 s", "timed_out": True}}

    _, verdict = _two("process_group", Fake())
    assert verdict.status == "error" and "300 s" in verdict.figure
    assert "--process-timeout" in verdict.fix and TIMEOUT_ENV in verdict.fix
    assert root_causes([verdict]) == [] and exit_status([verdict]) == EXIT_ERRORS
    Fake._runs = {"_2p": {"error": "rank 1 exited 1: RuntimeError: boom", "timed_out": False}}
    assert _two("process_group", Fake())[1].status == "fail"  # the loop's own crash stays a failure


def test_the_process_timeout_is_read_from_the_environment_and_refused_when_bad(monkeypatch):
    from mrpc_check.checks.distributed import DEFAULT_TIMEOUT, TIMEOUT_ENV, process_timeout
    from mrpc_check.errors import ConfigError

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert process_timeout() == DEFAULT_TIMEOUT
    monkeypatch.setenv(TIMEOUT_ENV, "900")
    assert process_timeout() == 900
    for bad in ("0", "-5", "ten"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=TIMEOUT_ENV):
            process_timeout()
