"""What a run leaves behind, and what it must not: one run per folder, nothing half-written, no empty folders."""

import errno
import json
import os
import subprocess
import sys
import time

import pytest

from mrpc_check.cli import main
from mrpc_check.pipeline.report import LOCK_NAME, OWNER_NAME


def train_args(model, data, out, *extra):
    return ["train", "--model", model, "--data", data, "--epochs", "1", "--output-dir", str(out), *extra]


class TestOneRunPerFolder:
    def test_a_run_on_a_folder_held_by_another_is_refused_naming_it_in_process(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        from mrpc_check.pipeline.report import output_lock

        out = tmp_path / "run"
        out.mkdir()
        with output_lock(out):  # held as a live run holds it (an OS lock on another open file)
            assert main(train_args(tiny_model_dir, glue_dir, out)) == 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert "is in use by another mrpc-check run" in err and f"pid {os.getpid()}" in err and "another --output-dir" in err
            assert not (out / "report.json").exists()
        assert main(train_args(tiny_model_dir, glue_dir, out)) == 0  # released with its holder

    @pytest.mark.integration
    def test_a_second_run_on_a_busy_folder_is_refused_at_once_naming_the_first(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        out = tmp_path / "run"
        env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
        first = subprocess.Popen([sys.executable, "-m", "mrpc_check", *train_args(tiny_model_dir, glue_dir, out, "--epochs", "400")],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not (out / OWNER_NAME).is_file():
                assert first.poll() is None and time.monotonic() < deadline, "the first run never took the folder"
                time.sleep(0.01)
            started = time.monotonic()
            assert main(train_args(tiny_model_dir, glue_dir, out)) == 2
            assert time.monotonic() - started < 10  # refused at once, not after loading data and model
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert "is in use by another mrpc-check run" in err and f"pid {first.pid}" in err and "another --output-dir" in err
            assert first.poll() is None  # the first run goes on untouched
        finally:
            first.kill()
            first.wait(timeout=30)

    def test_a_lock_left_by_a_killed_run_does_not_block(self, tmp_path, tiny_model_dir, glue_dir):
        out = tmp_path / "run"
        out.mkdir()
        (out / LOCK_NAME).write_text("")  # what a SIGKILLed run leaves: the file, but no process holding it
        (out / OWNER_NAME).write_text(json.dumps({"pid": 2 ** 22 + 1, "host": "gone", "started": "then", "command": "x"}))
        assert main(train_args(tiny_model_dir, glue_dir, out)) == 0
        assert (out / "report.json").is_file() and not (out / LOCK_NAME).exists() and not (out / OWNER_NAME).exists()


class TestNothingLost:
    def test_a_full_disk_at_the_final_save_keeps_the_previous_results(self, tmp_path, tiny_model_dir, glue_dir, capsys, monkeypatch):
        from transformers import PreTrainedModel

        out = tmp_path / "run"
        assert main(train_args(tiny_model_dir, glue_dir, out)) == 0
        before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and "curves" not in p.name}

        def full(self, *a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
        capsys.readouterr()
        assert main(train_args(tiny_model_dir, glue_dir, out, "--overwrite", "--seed", "7")) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "results not written" in err and "no space left on device" in err
        after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and "curves" not in p.name}
        assert after == before  # the previous model and report, byte for byte, and no temporary folders

    @pytest.mark.integration
    @pytest.mark.parametrize("point", ["model-saved", "model", "report"])
    def test_a_run_killed_at_each_write_point_leaves_one_runs_outputs_or_says_so(self, tmp_path, tiny_model_dir, glue_dir,
                                                                                   capsys, point):
        """A finished run, then a second one with --overwrite killed dead (os._exit, as SIGKILL) after each write of
        its outputs: the folder holds the old pair whole, the new pair whole, or readers say it is mixed in one line."""
        out = tmp_path / "run"
        assert main(train_args(tiny_model_dir, glue_dir, out, "--no-behaviour")) == 0
        old = json.loads((out / "report.json").read_text())["run_id"]
        env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MRPC_FAULT_AFTER=point)
        killed = subprocess.run([sys.executable, "-m", "mrpc_check", *train_args(tiny_model_dir, glue_dir, out, "--overwrite", "--seed",
                                 "7", "--no-behaviour", "--checkpoint-every", "1")], env=env, capture_output=True, text=True, timeout=300)
        assert killed.returncode == 137, killed.stderr[-2000:]
        report_id = json.loads((out / "report.json").read_text())["run_id"]
        model_id = json.loads((out / "model" / "mrpc_run.json").read_text())["run_id"]
        capsys.readouterr()
        if point == "model-saved":  # the new model never swapped in: the old pair, whole
            assert report_id == model_id == old
        elif point == "report":  # both written: the new pair, whole
            assert report_id == model_id != old
        else:  # the new model beside the old report: every reader says so, in one line
            assert model_id != report_id == old
            assert main(["evaluate", "--model", str(out / "model"), "--data", glue_dir, "--no-behaviour"]) == 2
            assert main(train_args(tiny_model_dir, glue_dir, out)) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 2 and all("model/ and report.json come from different runs" in line and "--overwrite" in line
                                         for line in err), err
            # The stopped run's checkpoints are kept until both are written: --resume finishes it.
            assert main(train_args(tiny_model_dir, glue_dir, out, "--seed", "7", "--no-behaviour", "--resume")) == 0
            report_id = json.loads((out / "report.json").read_text())["run_id"]
            assert json.loads((out / "model" / "mrpc_run.json").read_text())["run_id"] == report_id != old
        assert main(["evaluate", "--model", str(out / "model"), "--data", glue_dir, "--no-behaviour"]) == 0

    def test_a_failed_run_leaves_no_empty_folder(self, tmp_path, tiny_model_dir):
        out = tmp_path / "new" / "run"
        assert main(train_args(tiny_model_dir, str(tmp_path / "no-such-data"), out)) == 2
        assert not out.exists()

    def test_a_failed_run_in_an_existing_folder_leaves_it_as_it_was(self, tmp_path, tiny_model_dir):
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        assert main(train_args(tiny_model_dir, str(tmp_path / "no-such-data"), out)) == 2
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


class TestOneRunsPair:
    """model/ and report.json name one run (report.py's run id); a folder mixing two runs is said in one line."""

    def folder(self, tmp_path, model_id, report_id):
        out = tmp_path / "run"
        (out / "model").mkdir(parents=True)
        (out / "model" / "mrpc_run.json").write_text(json.dumps({"run_id": model_id}))
        (out / "report.json").write_text(json.dumps({"metrics": {}, **({"run_id": report_id} if report_id else {})}))
        return out

    def test_a_pair_of_one_run_or_without_ids_is_accepted(self, tmp_path):
        from mrpc_check.pipeline.report import pair_problem, read_report

        assert pair_problem(self.folder(tmp_path / "a", "r1", "r1")) is None
        assert pair_problem(self.folder(tmp_path / "b", "r1", None)) is None  # written before run ids: not judged
        assert read_report(tmp_path / "a" / "run")["run_id"] == "r1"

    def test_a_mixed_pair_is_refused_by_every_reader_unless_overwritten_or_resumed(self, tmp_path):
        from mrpc_check.errors import ConfigError
        from mrpc_check.pipeline.report import pair_problem, prepare_output_dir, read_report

        out = self.folder(tmp_path, "new", "old")
        assert "come from different runs" in pair_problem(out)
        for read in (lambda: read_report(out), lambda: prepare_output_dir(str(out)), lambda: prepare_output_dir(str(out), resume=True)):
            with pytest.raises(ConfigError, match="model/ and report.json come from different runs.*--overwrite"):
                read()  # --resume too: no checkpoint to finish the stopped run from
        assert prepare_output_dir(str(out), overwrite=True) == out
        (out / "model" / "mrpc_run.json").write_text("{")
        assert "cannot read which run wrote" in pair_problem(out)
