"""The 2-process checks on our Accelerate loop and on the plain Accelerate loop (torchrun, gloo)."""

import pytest

from mrpc_check.checks.verdict import REGISTRY

pytestmark = pytest.mark.distributed

CHECKS = ["process_group", "schedule_2proc", "accumulation_2proc", "evaluation_2proc"]


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
    # torchrun's own logs stay in the run's folder (left to itself it fills the system temp folder).
    assert any((tmp_path / "torchrun" / "torchrun-logs").iterdir())
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

    def dies(out_dir, spec, arch, built=None):
        if os.environ["RANK"] == "1":
            time.sleep(300)  # as a rank blocked in a collective its peer never joins
        raise RuntimeError("rank fell over")

    monkeypatch.setattr(distributed, "_worker", dies)
    started = time.monotonic()
    result = distributed.launch("accelerate", "bert", tmp_path, method="fork", timeout=120)
    assert time.monotonic() - started < 60
    assert result["error"].startswith("rank 0 exited 1:") and "rank fell over" in result["error"]


def _result(groups, rows_per_rank):
    """A 2-process result as distributed_run returns it: each rank's group and the training rows of its forwards."""
    ranks = []
    for rank, (group, epochs) in enumerate(zip(groups, rows_per_rank)):
        forwards = [{"rows": [["train", r] for r in rows[i:i + 4]], "grad": True, "steps_before": 0, "training": True}
                    for rows in epochs for i in range(0, len(rows), 4)]
        forwards.append({"rows": [["validation", 0]], "grad": False, "steps_before": 9, "training": False})
        ranks.append({"rank": rank, "group": group, "forwards": forwards})
    return {"ranks": ranks}


GLOO = {"initialized": True, "world_size": 2, "backend": "gloo", "accelerate": None}
SHARDS = [[list(range(0, 22, 2))] * 2, [list(range(1, 22, 2))] * 2]  # per rank, per epoch


@pytest.mark.parametrize("groups,named", [
    ([{**GLOO, "accelerate": {"num_processes": 1, "distributed_type": "DistributedType.NO"}}] * 2,
     "Accelerator saw 1 process, DistributedType.NO"),
    ([{"initialized": False, "world_size": 1, "backend": None, "accelerate": None}] * 2, "torch.distributed was never initialised"),
    ([GLOO, {**GLOO, "world_size": 1}], "world sizes [2, 1]"),
])
def test_ranks_that_ran_alone_are_named_and_nothing_else_is_judged(groups, named):
    from mrpc_check.checks.multiprocess import alone

    assert alone(_result(groups, SHARDS)) == f"each of the 2 ranks ran alone ({named})"


def test_one_group_that_shards_is_not_alone_and_one_that_does_not_shard_is_named():
    from mrpc_check.checks.multiprocess import _first_epoch_rows, alone

    accelerate = {**GLOO, "accelerate": {"num_processes": 2, "distributed_type": "DistributedType.MULTI_CPU"}}
    assert alone(_result([accelerate] * 2, SHARDS)) == ""
    assert [len(r) for r in _first_epoch_rows(_result([GLOO] * 2, SHARDS))] == [11, 11]
    assert [len(set(r)) for r in _first_epoch_rows(_result([GLOO] * 2, [[list(range(22))] * 2] * 2))] == [22, 22]


def test_a_bare_accelerator_on_cpu_fails_process_group_and_the_others_are_not_judged(bert):
    from mrpc_check.checks.battery import root_causes, run_battery
    from mrpc_check.checks.contract import load_adapter

    verdicts = run_battery(load_adapter("mrpc_check.checks.broken:BareAcceleratorOnCpu"), bert,
                           checks=["process_group", "schedule_2proc", "evaluation_2proc"])
    got = {v.check: v for v in verdicts}
    assert got["process_group"].status == "fail" and "Accelerator(cpu=True)" in got["process_group"].fix
    assert "Accelerator saw 1 process" in got["process_group"].figure
    for name in ("schedule_2proc", "evaluation_2proc"):
        assert got[name].status == "skip" and got[name].caused_by == "process_group", got[name].message()
    assert root_causes(verdicts) == ["process_group"]


def test_a_timeout_on_a_busy_machine_names_the_share_of_a_core_the_ranks_got(monkeypatch):
    """Load above the cores: the line says how little of a core each rank had; on a machine not overloaded, nothing."""
    from mrpc_check.checks import distributed

    monkeypatch.setattr(distributed.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(distributed.os, "getloadavg", lambda: (6.0, 5.0, 4.0))
    assert distributed.machine_load() == (" (load average 6.0 on 2 cores: each rank got about 0.3 of a core; run it on an "
                                          "idle machine or raise the limit)")
    monkeypatch.setattr(distributed.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert distributed.machine_load() == ""
