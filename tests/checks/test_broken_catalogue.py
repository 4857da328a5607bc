"""Every broken twin fails the check aimed at it, with a message naming the bug and a fix."""

import pytest

from mrpc_check.checks.battery import run_battery
from mrpc_check.checks.broken import CATALOGUE
from mrpc_check.checks.verdict import REGISTRY


def _param(entry):
    marks = [pytest.mark.gpu] if REGISTRY[entry.check].tier == "gpu" else []
    return pytest.param(entry, id=entry.loop.__name__, marks=marks)


@pytest.mark.parametrize("entry", [_param(e) for e in CATALOGUE])
def test_check_catches_the_bug(bert, entry):
    from mrpc_check.checks.harness import Battery

    battery = Battery(entry.loop(), bert)
    try:
        verdict = REGISTRY[entry.check].run(battery)
    finally:
        battery.close()
    assert verdict.status == "fail", f"{entry.check} did not catch {entry.bug}: {verdict.message()}"
    assert entry.named in verdict.bug, verdict.message()
    assert verdict.fix


def test_every_check_has_a_broken_twin():
    aimed = {e.check for e in CATALOGUE}
    missing = [name for name in REGISTRY if name not in aimed and name not in {"padding", "clipping"}]
    assert not missing, f"checks without a broken twin: {missing}"
