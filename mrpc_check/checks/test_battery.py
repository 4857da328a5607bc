"""The battery as pytest tests, for any loop: one test per check.

    pytest --pyargs mrpc_check.checks --mrpc-loop package.module:adapter
    pytest --pyargs mrpc_check.checks --mrpc-loop manual -m "not gpu"

The loop comes from ``--mrpc-loop`` or from a ``mrpc_loop`` fixture in your own conftest.py;
checks carry the suite's markers (``gpu`` for mixed precision), so ``-m`` selects tiers.
Verdicts map onto pytest's outcomes: pass passes, skip skips, fail fails (a consequence of
another failing check says so, and names it), error is a pytest error (the check could not judge), warn passes with a ``MrpcCheckWarning`` in
pytest's warnings summary, or fails under ``--mrpc-strict``. ``test_effective_recipe`` prints what the
loop did beside the recipe (:mod:`mrpc_check.checks.effective`) after the tests and records it as the
``mrpc_effective_recipe`` property. Each check's verdict becomes junit properties (``--junitxml``):
:mod:`mrpc_check.checks.pytest_route` says which, and how the loop is named.
"""

import warnings

import pytest

from mrpc_check.checks.battery import check_names  # noqa: F401  (registers every check)
from mrpc_check.checks.pytest_route import record_verdict
from mrpc_check.checks.verdict import REGISTRY, judge

_MARKS = {"fast": (), "gpu": (pytest.mark.gpu,), "distributed": (pytest.mark.distributed,)}


class MrpcCheckWarning(UserWarning):
    """A check's warning: a real effect, confined and graded by its size (fails under --mrpc-strict)."""


@pytest.fixture
def mrpc_verdict(request, mrpc_battery, check_name):
    """The check's verdict, judged in set-up: a check that could not judge (``error``) is a pytest error, not a failure."""
    verdict = judge(mrpc_battery, check_name)
    record_verdict(request.node, verdict, _loop(request.config, mrpc_battery))
    if verdict.status == "error":
        pytest.fail(verdict.message(), pytrace=False)  # raised in a fixture: pytest reports ERROR, never a failed loop
    return verdict


@pytest.mark.parametrize("check_name", [pytest.param(n, marks=_MARKS[c.tier], id=n) for n, c in REGISTRY.items()])
def test_check(mrpc_verdict, pytestconfig):
    verdict = mrpc_verdict
    if verdict.status == "skip":
        pytest.skip(verdict.figure)
    if verdict.status == "warn":
        if pytestconfig.getoption("--mrpc-strict"):
            pytest.fail(f"{verdict.message()} (a warning fails under --mrpc-strict)", pytrace=False)
        warnings.warn(MrpcCheckWarning(verdict.message()))
        return
    if verdict.status == "fail":
        pytest.fail(verdict.message(), pytrace=False)


def test_effective_recipe(request, mrpc_battery):
    """What the loop did on the base run, beside the recipe; fails when it cannot be inferred."""
    from mrpc_check.checks.effective import effective_recipe, format_effective

    effective = effective_recipe(mrpc_battery)
    # Not record_property: it warns on every run under pytest's default junit family (pytest_route writes it).
    request.node.user_properties += [("mrpc_effective_recipe", f"{mrpc_battery.name}: {format_effective(effective)}"),
                                     ("mrpc_loop", _loop(request.config, mrpc_battery))]
    if effective.error:
        pytest.fail(f"effective recipe: {effective.error}", pytrace=False)


def _loop(config, battery) -> str:
    """The loop as --mrpc-loop named it, or the adapter's name when a conftest fixture handed it over."""
    from mrpc_check.checks.contract import BUILTIN
    from mrpc_check.checks.pytest_route import DEFAULT_INSIDE, OPTION, loop_label

    spec = getattr(battery.adapter, "mrpc_spec", None)
    if config.getoption(OPTION) or spec == BUILTIN[DEFAULT_INSIDE]:
        return loop_label(config)
    return spec or battery.name
