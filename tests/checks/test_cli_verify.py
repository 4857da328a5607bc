"""`mrpc-check verify`: table and exit 0 on a correct loop, exit 1 naming the bug, exit 2 on bad input."""

import json

from mrpc_check.cli import main


def test_correct_loop_exits_0_with_json(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["verify", "--loop", "example", "--checks", "inputs,modes", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "inputs" in table and "PASS" in table and "2 passed, 0 failed" in table
    assert [v["status"] for v in json.loads(out.read_text())["verdicts"]] == ["pass", "pass"]


def test_broken_loop_exits_1_naming_bug_and_fix(capsys):
    assert main(["verify", "--loop", "mrpc_check.checks.broken:DropsAttentionMask", "--checks", "inputs"]) == 1
    table = capsys.readouterr().out
    assert "FAIL" in table and "attention mask dropped" in table and "model(**batch)" in table


def test_bad_adapter_and_unknown_check_exit_2(capsys):
    assert main(["verify", "--loop", "no_such_pkg.mod:adapter"]) == 2
    assert main(["verify", "--loop", "example", "--checks", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("mrpc-check: error:") for line in err)


def test_arch_option_trains_another_family(capsys):
    assert main(["verify", "--loop", "mrpc_check.checks.broken:DropsTokenTypes", "--arch", "distilbert", "--checks", "inputs"]) == 0
    assert "PASS" in capsys.readouterr().out  # DistilBERT has no token types to drop


def test_a_launch_method_it_does_not_know_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("MRPC_CHECK_LAUNCH", "mpirun")
    assert main(["verify", "--loop", "accelerate", "--checks", "schedule_2proc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("MRPC_CHECK_LAUNCH='mpirun': set it to fork or torchrun, or unset it")


def test_a_check_that_raises_exits_3_with_one_line_per_error(monkeypatch, capsys):
    """An error verdict alone is exit 3 (not 1: the loop has no bug found), and the table says what to report."""
    import dataclasses

    from mrpc_check.checks.verdict import REGISTRY

    def boom(battery):
        raise RuntimeError("planted")

    monkeypatch.setitem(REGISTRY, "modes", dataclasses.replace(REGISTRY["modes"], run=boom))
    assert main(["verify", "--loop", "example", "--checks", "inputs,modes"]) == 3
    table = capsys.readouterr().out
    assert "modes              ERROR" in table and "RuntimeError: planted" in table and "report it" in table


def test_a_bad_process_timeout_is_one_line_exit_2(monkeypatch, capsys):
    from mrpc_check.checks.distributed import TIMEOUT_ENV

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert main(["verify", "--loop", "example", "--checks", "inputs", "--process-timeout", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--process-timeout" in err[0]
    assert main(["verify", "--loop", "example", "--checks", "inputs", "--process-timeout", "900"]) == 0
    import os

    assert os.environ[TIMEOUT_ENV] == "900"
    monkeypatch.delenv(TIMEOUT_ENV)
