"""The gallery of published loops (examples/published/): the battery's verdicts equal the ones written beside each.

Each module there re-creates one published training script's loop and says, in ``EXPECTED``, the
verdict of every check that does not pass, as read from the original. Integration tier: six full
batteries (about a minute of CPU).
"""

import importlib.util
from pathlib import Path

import pytest

from mrpc_check.checks.battery import check_names

GALLERY = Path(__file__).resolve().parents[2] / "examples" / "published"
LOOPS = sorted(p.stem for p in GALLERY.glob("*.py"))


# Libraries a gallery loop fine-tunes with, installed as test extras (pyproject's `test`): a loop that needs one
# that is absent is skipped, naming the install.
EXTRA_LIBRARIES = ("peft", "schedulefree", "lightning")


def _module(stem):
    spec = importlib.util.spec_from_file_location(f"_published_{stem}", GALLERY / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in EXTRA_LIBRARIES:
            raise
        pytest.skip(f"{stem} needs {exc.name}: pip install -e '.[test]' (a pinned test extra)")
    return module


def test_the_gallery_holds_eleven_loops_three_with_extras():
    assert len(LOOPS) >= 11, LOOPS
    sources = {stem.split("_")[0] for stem in LOOPS}
    assert {"course", "accelerate", "transformers"} <= sources, sources
    for stem in LOOPS:
        text = (GALLERY / f"{stem}.py").read_text()
        assert "Source:" in text and "EXPECTED" in text and "EFFECTIVE" in text, \
            f"{stem}: cite the source, write the expected verdicts and the effective recipe"
    extras = {name for stem in LOOPS if not _needs_extra(stem) for name in ("clipping", "loss", "frozen")
              if _module(stem).EXPECTED.get(name) == "warn"}
    assert extras == {"clipping", "loss", "frozen"}, extras


def _needs_extra(stem) -> bool:
    text = (GALLERY / f"{stem}.py").read_text()
    return any(f"import {lib}" in text or f"from {lib}" in text for lib in EXTRA_LIBRARIES)


def check_effective(stem, effective, want):
    """The effective recipe inferred on the base run against what the loop was written to do (its EFFECTIVE)."""
    assert not effective.error, effective.error
    if want["clip_norm"] is None:
        assert effective.clip.norm is None, f"{stem}: {effective.clip.describe()}"
    else:
        assert effective.clip.norm == pytest.approx(want["clip_norm"], rel=1e-3), f"{stem}: {effective.clip.describe()}"
    assert tuple(effective.frozen_prefixes) == tuple(want["frozen"]), f"{stem}: frozen {effective.frozen_prefixes}"
    assert effective.loss.form is not None, f"{stem}: {effective.loss.describe()}"
    assert effective.loss.form.label_smoothing == pytest.approx(want["label_smoothing"], abs=1e-3), stem
    assert effective.schedule is not None and effective.schedule[0] == want["warmup"], f"{stem}: schedule {effective.schedule}"
    if "added" in want:  # tensors the loop added and trains (PEFT), described as a reader would
        from mrpc_check.checks.effective import describe_added

        assert describe_added(effective.added) == "; ".join(want["added"]), f"{stem}: added {effective.added}"
    else:
        assert not effective.added, f"{stem}: added {effective.added}"
    if "total" in want:
        assert effective.schedule[1] == want["total"], f"{stem}: schedule {effective.schedule}"


@pytest.mark.integration
@pytest.mark.parametrize("stem", LOOPS)
def test_the_battery_gives_the_expected_verdicts(bert, stem):
    import torch

    from mrpc_check.checks.battery import root_causes, run_battery
    from mrpc_check.checks.contract import load_adapter

    module = _module(stem)
    expected = module.expected() if hasattr(module, "expected") else module.EXPECTED
    adapter = load_adapter(f"{GALLERY / stem}.py:adapter")
    verdicts = run_battery(adapter, bert, checks=check_names(("fast",)))
    got = {v.check: v.status for v in verdicts}
    everything = "\n".join(v.message() for v in verdicts)
    for name, status in got.items():
        if name == "mixed_precision" and not torch.cuda.is_available():
            continue
        want = expected.get(name, "pass")  # a tuple: the statuses a verdict that depends on chance may take
        assert status in (want if isinstance(want, tuple) else (want,)), f"{stem}: {name} gave {status}, expected {want}\n{everything}"
    check_effective(stem, verdicts.effective, module.EFFECTIVE)
    # Every failure is a root cause with a fix, or names the root it follows from without one.
    for v in verdicts:
        if v.status == "fail":
            assert (v.fix and not v.caused_by) or (v.caused_by in root_causes(verdicts) and not v.fix), v.message()


@pytest.mark.integration
@pytest.mark.distributed
@pytest.mark.parametrize("stem", ["course_accelerate", "transformers_glue_no_trainer"])
def test_the_accelerate_scripts_on_two_processes_name_what_differs(bert, stem):
    """With Accelerator(cpu=True) the ranks form one group, and schedule_2proc names the difference each script has
    (never a fix the script already applies: the glue script sizes before prepare and passes the scheduler to it)."""
    from mrpc_check.checks.battery import root_causes, run_battery
    from mrpc_check.checks.contract import load_adapter

    module = _module(stem)
    adapter = load_adapter(f"{GALLERY / stem}.py:adapter")
    verdicts = run_battery(adapter, bert, checks=list(module.EXPECTED_2PROC))
    got = {v.check: v for v in verdicts}
    for name, status in module.EXPECTED_2PROC.items():
        assert got[name].status == status, got[name].message()
    schedule = got["schedule_2proc"]
    assert schedule.caused_by is None and all(text in schedule.bug for text in module.SCHEDULE_2PROC_NAMES), schedule.message()
    if stem == "transformers_glue_no_trainer":
        assert "before accelerator.prepare" not in schedule.bug and "size it from the loader before prepare" not in schedule.fix
    assert "schedule_2proc" in root_causes(verdicts)
