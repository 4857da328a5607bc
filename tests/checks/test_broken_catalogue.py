"""Every broken twin is caught by the check aimed at it (default tier: that check and what it rests on),
and the whole battery names that check as the only root cause (integration tier: the battery on every
twin, a few minutes of CPU)."""

import json

import pytest

from mrpc_check.checks.broken import CATALOGUE
from mrpc_check.checks.verdict import REGISTRY


_MARKS = {"fast": [], "gpu": [pytest.mark.gpu], "distributed": [pytest.mark.distributed]}


def _param(entry):
    return pytest.param(entry, id=entry.loop.__name__, marks=_MARKS[REGISTRY[entry.check].tier])


@pytest.mark.parametrize("entry", [_param(e) for e in CATALOGUE])
def test_the_aimed_check_catches_its_twin(bert, entry):
    """The check aimed at the bug, run with the checks it rests on, gives the twin's verdict and names it."""
    from mrpc_check.checks.battery import run_battery
    from mrpc_check.checks.contract import load_adapter

    loop = load_adapter(f"mrpc_check.checks.broken:{entry.loop.__name__}")
    verdicts = run_battery(loop, bert, checks=[entry.check])
    verdict = next(v for v in verdicts if v.check == entry.check)
    everything = "\n".join(v.message() for v in verdicts)
    assert verdict.status == entry.status, f"{entry.check} gave {verdict.status} on {entry.bug}:\n{everything}"
    assert entry.named in verdict.bug, verdict.message()
    assert verdict.fix and verdict.caused_by is None
    # What it rests on passes: the twin breaks one thing, and the aimed check is its root.
    assert all(v.status in ("pass", "skip") for v in verdicts if v.check != entry.check), everything


@pytest.mark.integration
@pytest.mark.parametrize("entry", [_param(e) for e in CATALOGUE])
def test_the_battery_names_one_root_cause(bert, entry):
    from mrpc_check.checks.battery import check_names, counts, root_causes, run_battery
    from mrpc_check.checks.contract import load_adapter

    # Loaded by spec, as a user's adapter is: the 2-process checks import it again in each rank.
    loop = load_adapter(f"mrpc_check.checks.broken:{entry.loop.__name__}")
    tiers = ("fast", REGISTRY[entry.check].tier)
    verdicts = run_battery(loop, bert, checks=check_names(tiers))
    verdict = next(v for v in verdicts if v.check == entry.check)
    everything = "\n".join(v.message() for v in verdicts)
    assert verdict.status == entry.status, f"{entry.check} gave {verdict.status} on {entry.bug}:\n{everything}"
    assert entry.named in verdict.bug, verdict.message()
    assert verdict.fix and verdict.caused_by is None
    expected_roots = [entry.check] if entry.status == "fail" else []
    assert root_causes(verdicts) == expected_roots, everything
    # Every other failure is a consequence of that root, and says so without a fix of its own.
    for other in verdicts:
        if other.status == "fail" and other.check != entry.check:
            assert other.caused_by == entry.check and not other.fix, other.message()
    assert counts(verdicts)["warn"] == (entry.status == "warn"), everything


def test_every_check_has_a_broken_twin():
    aimed = {e.check for e in CATALOGUE}
    # padding shares its bug's twin with inputs (DropsAttentionMask: padding's failure is its consequence);
    # accumulation_2proc has none yet.
    missing = [name for name in REGISTRY if name not in aimed and name not in {"padding", "accumulation_2proc"}]
    assert not missing, f"checks without a broken twin: {missing}"


def test_every_check_with_a_tolerance_has_a_near_miss():
    """Precision as well as reach: a tolerance loosened far would let these small but real bugs through."""
    near = {e.check for e in CATALOGUE if e.near_miss}
    for name in ("schedule", "accumulation", "gradients_cleared", "clipping", "evaluation", "resume"):
        assert name in near, f"{name} has no near-miss twin"


def test_json_and_table_report_the_root_cause_first(bert, tmp_path, capsys):
    from mrpc_check.cli import main

    out = tmp_path / "v.json"
    code = main(["verify", "--loop", "mrpc_check.checks.broken:ZeroGradOncePerEpoch",
                 "--checks", "accumulation,gradients_cleared,label_control", "--json", str(out)])
    assert code == 1
    table = capsys.readouterr().out.splitlines()
    assert table[2].startswith("gradients_cleared") and "FAIL" in table[2] and "zero_grad" in table[2]
    assert "fails because `gradients_cleared` fails" in "\n".join(table)
    assert table[-2].startswith("root cause: gradients_cleared")
    assert table[-1] == "0 passed, 2 failed, 0 warned, 1 skipped"
    data = json.loads(out.read_text())
    assert data["counts"] == {"pass": 0, "warn": 0, "fail": 2, "skip": 1, "error": 0}
    assert data["root_causes"] == ["gradients_cleared"]
    by_check = {v["check"]: v for v in data["verdicts"]}
    assert set(by_check["accumulation"]) == {"check", "status", "figure", "bug", "fix", "caused_by", "extra"}
    assert by_check["accumulation"]["caused_by"] == "gradients_cleared" and by_check["accumulation"]["fix"] == ""
    assert by_check["label_control"] == {**by_check["label_control"], "status": "skip", "caused_by": "gradients_cleared"}
    assert by_check["gradients_cleared"]["caused_by"] is None


@pytest.mark.parametrize("twin, strict", [("LossDividedByAccumSteps", False), ("AccelerateAccumulate", True)])
def test_the_accumulation_idioms_warn_and_fail_only_under_strict(twin, strict, capsys, tmp_path):
    """Each idiom warns (exit 0); under --strict the warning fails the run (exit 1): one verify per idiom, one mode each."""
    from mrpc_check.cli import main

    out = tmp_path / "v.json"
    code = main(["verify", "--loop", f"mrpc_check.checks.broken:{twin}", "--checks", "accumulation", "--json", str(out)]
                + (["--strict"] if strict else []))
    captured = capsys.readouterr()
    table = captured.out
    assert "WARN" in table and "accelerator.accumulate()" in table and "1 optimizer step in 230" in table
    assert table.rstrip().endswith("0 passed, 0 failed, 1 warned, 0 skipped")
    data = json.loads(out.read_text())
    assert data["counts"]["warn"] == 1 and data["strict"] is strict and data["exit"] == int(strict)
    assert code == int(strict)
    assert ("--strict: a warning fails the run" in captured.err) is strict
