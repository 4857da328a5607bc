"""A user's own loop on real data through `mrpc-check train --loop FILE.py:adapter` and `sweep --loop`.

On the tiny model and a synthetic GLUE folder: the report holds the bundled metric on the predictions
the adapter returned (recomputed here from the saved model), the curves' history comes from the
observation, flags the adapter declares it ignores are refused before any work, and a loop that
raises ends in one line with its checkpoints kept.
"""

import json
from pathlib import Path

import pytest

from mrpc_check.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MY_LOOP = f"{EXAMPLES / 'my_loop.py'}:adapter"


def train(tmp_path, model, data, *extra):
    out = tmp_path / "run"
    return main(["train", "--model", model, "--data", data, "--epochs", "2", "--lr", "1e-3", "--batch-size", "8",
                 "--output-dir", str(out), *extra]), out


def test_a_users_adapter_trains_and_writes_the_same_report(tmp_path, tiny_model_dir, glue_dir, capsys):
    rc, out = train(tmp_path, tiny_model_dir, glue_dir, "--loop", MY_LOOP, "--grad-accum", "2", "--warmup-steps", "1")
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["loop"] == MY_LOOP and report["loop"]["adapter"] == MY_LOOP
    assert report["loop"]["capabilities"]["supports"] == sorted(report["loop"]["capabilities"]["supports"])
    # 40 rows, batch 8: 5 micro-batches an epoch, groups of 2 -> 3 steps an epoch, 6 in all, each with its lr and loss.
    assert report["train"]["optimizer_steps"] == 6 and len(report["history"]["lr"]) == len(report["history"]["loss"]) == 6
    assert report["history"]["lr"][0] == 0.0 and report["train"]["final_lr"] == 0.0  # warmup 1, linear to 0
    assert report["train"]["samples"] == 80
    # The scores are the bundled metric on what the saved model predicts (the adapter's predictions of the trained model).
    code = main(["evaluate", "--model", str(out / "model"), "--data", glue_dir, "--output", str(tmp_path / "m.json")])
    assert code == 0
    scored = json.loads((tmp_path / "m.json").read_text())
    assert report["metrics"]["validation"]["accuracy"] == pytest.approx(scored["accuracy"])
    assert report["metrics"]["validation"]["f1"] == pytest.approx(scored["f1"])
    assert (out / "model" / "model.safetensors").is_file()


def test_a_flag_the_adapter_declares_it_ignores_is_refused_before_any_work(tmp_path, tiny_model_dir, glue_dir, capsys):
    loop = f"{EXAMPLES / 'published' / 'course_manual.py'}:adapter"
    rc, out = train(tmp_path, tiny_model_dir, glue_dir, "--loop", loop, "--grad-accum", "2")
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Tokenizing" not in err  # refused before the data is read
    assert "--grad-accum 2" in err.strip().splitlines()[-1] and "declares no 'grad_accum'" in err


def test_resume_asks_for_a_resumable_adapter(tmp_path, tiny_model_dir, glue_dir, capsys):
    rc, _ = train(tmp_path, tiny_model_dir, glue_dir, "--loop", MY_LOOP, "--resume")
    assert rc == 2 and "is not resumable" in capsys.readouterr().err


def test_a_loop_that_raises_is_one_line_and_keeps_its_checkpoints(tmp_path, tiny_model_dir, glue_dir, capsys):
    (tmp_path / "crashing.py").write_text(
        "import os\n"
        "from mrpc_check.checks.broken import PlainLoop\n"
        "class Crashing(PlainLoop):\n"
        "    def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):\n"
        "        super().optimizer_step(model, optimizer, scheduler, scaler, recipe)\n"
        "        if os.path.exists(os.path.join(recipe.checkpoint_dir, 'plain.pt')):\n"
        "            raise RuntimeError('CUDA error: device-side assert triggered\\nmore')\n"
        "adapter = Crashing()\n")
    rc, out = train(tmp_path, tiny_model_dir, glue_dir, "--loop", f"{tmp_path / 'crashing.py'}:adapter")
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "more" not in err, err
    last = err.strip().splitlines()[-1]
    assert "raised RuntimeError: CUDA error: device-side assert triggered" in last and "rerun with --resume" in last
    assert (out / "loop-checkpoints" / "plain.pt").is_file() and not (out / "report.json").exists()


def test_an_adapter_spec_that_does_not_import_is_one_line(tmp_path, tiny_model_dir, glue_dir, capsys):
    rc, out = train(tmp_path, tiny_model_dir, glue_dir, "--loop", f"{EXAMPLES / 'my_loop.py'}:adaptor")
    assert rc == 2 and not out.exists()
    assert "did you mean 'adapter'" in capsys.readouterr().err


def test_a_sweep_runs_a_users_adapter_per_seed(tmp_path, tiny_model_dir, glue_dir, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--seeds", "1,2", "--loop", MY_LOOP, "--model", tiny_model_dir, "--data", glue_dir, "--epochs", "1",
                 "--lr", "1e-3", "--batch-size", "8", "--output-dir", str(out), "--jobs", "1"])
    capsys.readouterr()
    assert code in (0, 1)  # the verdict on two seeds of a tiny model may fail its floors; the runs themselves happened
    for seed in (1, 2):
        report = json.loads((out / f"seed-{seed}" / "report.json").read_text())
        assert report["config"]["seed"] == seed and report["loop"]["adapter"] == MY_LOOP
    assert json.loads((out / "sweep.json").read_text())["runs"][0]["seed"] == 1
