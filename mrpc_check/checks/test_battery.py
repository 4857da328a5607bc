"""The battery as pytest tests, for any loop: one test per check.

    pytest --pyargs mrpc_check.checks --mrpc-loop package.module:adapter
    pytest --pyargs mrpc_check.checks --mrpc-loop manual -m "not gpu"

The loop comes from ``--mrpc-loop`` or from a ``mrpc_loop`` fixture in your own conftest.py;
checks carry the suite's markers (``gpu`` for mixed precision), so ``-m`` selects tiers.
"""

import pytest

from mrpc_check.checks.battery import check_names  # noqa: F401  (registers every check)
from mrpc_check.checks.verdict import REGISTRY

_MARKS = {"fast": (), "gpu": (pytest.mark.gpu,), "distributed": (pytest.mark.distributed,)}


@pytest.mark.parametrize("check_name", [pytest.param(n, marks=_MARKS[c.tier], id=n) for n, c in REGISTRY.items()])
def test_check(mrpc_battery, check_name):
    verdict = REGISTRY[check_name].run(mrpc_battery)
    if verdict.status == "skip":
        pytest.skip(verdict.figure)
    assert verdict.passed, verdict.message()
