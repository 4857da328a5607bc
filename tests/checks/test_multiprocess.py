"""The 2-process checks on our Accelerate loop and on the plain Accelerate loop (torchrun, gloo)."""

import pytest

from mrpc_check.checks.verdict import REGISTRY

pytestmark = pytest.mark.distributed

CHECKS = ["schedule_2proc", "accumulation_2proc", "evaluation_2proc"]


@pytest.mark.parametrize("check_name", CHECKS)
@pytest.mark.parametrize("loop", ["accelerate", "mrpc_check.checks.broken:AcceleratedLoop"], ids=["ours", "plain_accelerate"])
def test_loop_passes_at_two_processes(battery_for, loop, check_name):
    verdict = REGISTRY[check_name].run(battery_for(loop))
    assert verdict.status == "pass", verdict.message()


def test_loops_without_distributed_support_are_skipped(battery_for):
    assert REGISTRY["schedule_2proc"].run(battery_for("manual")).status == "skip"
