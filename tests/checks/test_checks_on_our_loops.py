"""Our three loops, the plain example loop and README's two user loops pass every single-process check, with no warning."""

from pathlib import Path

import pytest

from mrpc_check.checks.battery import check_names
from mrpc_check.checks.verdict import REGISTRY

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOOPS = ["manual", "accelerate", "trainer", "example", f"{EXAMPLES / 'my_loop.py'}:adapter", f"{EXAMPLES / 'accelerate_loop.py'}:adapter"]
IDS = ["manual", "accelerate", "trainer", "plain", "readme_example", "readme_accelerate_example"]


@pytest.mark.parametrize("check_name", check_names(("fast",)))
@pytest.mark.parametrize("loop", LOOPS, ids=IDS)
def test_loop_passes(battery_for, loop, check_name):
    verdict = REGISTRY[check_name].run(battery_for(loop))
    assert verdict.status in ("pass", "skip"), verdict.message()


@pytest.mark.parametrize("loop,expected", [("manual", "pass"), ("accelerate", "pass"), ("trainer", "skip")])
def test_resume_applies_to_the_loops_that_offer_it(battery_for, loop, expected):
    assert REGISTRY["resume"].run(battery_for(loop)).status == expected


def test_base_run_exercises_every_boundary(battery_for):
    """The base recipe really has an uneven last micro-batch, an uneven eval batch and evaluation between epochs."""
    run = battery_for("manual").base_run()
    sizes = [len(f.rows) for f in run.observation.train_forwards()]
    assert sizes == [4, 4, 4, 4, 4, 2] * 2
    evals = [len(f.rows) for f in run.observation.eval_forwards()]
    assert evals == ([4] * 7 + [2]) * 2
    assert [f.steps_before for f in run.observation.eval_forwards()][0] == 3  # after epoch 1, before epoch 2


def test_tests_that_share_a_battery_share_an_xdist_group(request):
    """Under `--dist loadgroup` (the default spreading), a battery is built on one worker only."""
    sharing = [i for i in request.session.items if "battery_for" in i.fixturenames]
    if not sharing:
        pytest.skip("no battery test collected in this run")
    groups = {i.nodeid: [m.args[0] for m in i.iter_markers("xdist_group")] for i in sharing}
    assert all(len(g) == 1 for g in groups.values()), groups
    loops = {i.callspec.params.get("loop", "manual") for i in sharing if hasattr(i, "callspec")}
    assert {g[0] for g in groups.values()} == {f"battery-{loop}" for loop in loops | {"manual"}}
