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


@pytest.mark.integration
def test_forked_ranks_observe_what_torchrun_ranks_observe(tmp_path):
    """The default fork launch changes how the ranks start, not what they compute: fresh torchrun
    interpreters give the same steps, learning rates, rows, predictions and weights."""
    import torch

    from mrpc_check.checks.distributed import launch

    runs = {}
    for method in ("fork", "torchrun"):
        (tmp_path / method).mkdir()
        runs[method] = launch("accelerate", "bert", tmp_path / method, method=method)
        assert "error" not in runs[method], runs[method]
    fork, fresh = runs["fork"], runs["torchrun"]
    for a, b in zip(fork["ranks"], fresh["ranks"]):
        assert (a["predictions"], a["final_lrs"], a["forwards"]) == (b["predictions"], b["final_lrs"], b["forwards"])
        assert [s["lrs"] for s in a["steps"]] == [s["lrs"] for s in b["steps"]]
    for name, weight in fork["weights"].items():
        torch.testing.assert_close(weight, fresh["weights"][name], rtol=1e-5, atol=1e-6)


def test_a_rank_that_fails_is_one_line_naming_the_rank_and_the_other_is_not_waited_for(tmp_path, monkeypatch):
    import os
    import time

    import mrpc_check.checks.distributed as distributed

    def dies(out_dir, spec, arch):
        if os.environ["RANK"] == "1":
            time.sleep(300)  # as a rank blocked in a collective its peer never joins
        raise RuntimeError("rank fell over")

    monkeypatch.setattr(distributed, "_worker", dies)
    started = time.monotonic()
    result = distributed.launch("accelerate", "bert", tmp_path, method="fork", timeout=120)
    assert time.monotonic() - started < 60
    assert result["error"].startswith("rank 0 exited 1:") and "rank fell over" in result["error"]
