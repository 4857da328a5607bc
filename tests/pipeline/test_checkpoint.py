"""Checkpoint and resume: a killed run resumes to the same final weights, bit for bit on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mrpc_check.pipeline.checkpoint import CHECKPOINT_DIR, Checkpointer, checkpoints_in, latest_checkpoint
from mrpc_check.cli import main
from mrpc_check.pipeline.config import make_config
from mrpc_check.errors import ConfigError, TrainingError
from mrpc_check.pipeline.model import build_optimizer
from mrpc_check.testing import poison_forward, reset_accelerate, synthetic_mrpc
from mrpc_check.pipeline.train import train_manual
from mrpc_check.pipeline.train_accelerate import train_accelerate

HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


class Killed(Exception):
    """Stands in for SIGKILL inside the process: nothing after it runs."""


@pytest.fixture(scope="module")
def metric():
    from mrpc_check.pipeline.evaluation import load_metric

    return load_metric()


def run(loop, model, data, loaders, metric, out, checkpointer=None, **overrides):
    reset_accelerate()
    cfg = make_config(device="cpu", batch_size=4, epochs=2, lr=1e-3, output_dir=str(out), **overrides)
    train_loader, eval_loader = loaders(data, 4, eval_dataset=data.select(range(10)))
    torch.manual_seed(7)
    optimizer = build_optimizer(model, cfg.lr)
    if loop is train_accelerate:
        return loop(model, optimizer, train_loader, eval_loader, cfg, metric, checkpointer=checkpointer), cfg
    return loop(model, optimizer, train_loader, eval_loader, cfg, metric, checkpointer), cfg


def kill_at_forward(model, n):
    def kill(output):
        raise Killed()

    return poison_forward(model, at_call=n, make=kill)


@pytest.mark.parametrize("loop", [train_manual, train_accelerate], ids=["manual", "accelerate"])
def test_resume_after_a_kill_mid_epoch_is_bitwise_identical(tmp_path, tiny_model_factory, tiny_tokenized, loaders, metric, loop):
    data = tiny_tokenized["train"].select(range(40))  # 10 batches of 4 per epoch, dropout on
    whole = tiny_model_factory(seed=3)
    r_whole, cfg = run(loop, whole, data, loaders, metric, tmp_path / "whole")

    killed = tiny_model_factory(seed=3)
    handle = kill_at_forward(killed, 15)  # mid epoch 2, after the step-12 checkpoint
    with pytest.raises(Killed):
        run(loop, killed, data, loaders, metric, tmp_path / "run", Checkpointer(tmp_path / "run", "4", cfg.to_dict()))
    handle.remove()
    assert latest_checkpoint(tmp_path / "run").name == "step-00000012"

    resumed = tiny_model_factory(seed=99)  # different init: everything must come from the checkpoint
    torch.manual_seed(12345)  # and the RNG state too
    ckpt = Checkpointer(tmp_path / "run", "4", cfg.to_dict(), resume=True)
    r_resumed, _ = run(loop, resumed, data, loaders, metric, tmp_path / "run", ckpt)
    assert r_resumed.step_losses == r_whole.step_losses
    assert r_resumed.epochs == r_whole.epochs
    assert r_resumed.optimizer_steps == r_whole.optimizer_steps == 20 and r_resumed.final_lr == 0.0
    assert r_resumed.train_samples == r_whole.train_samples and r_resumed.real_tokens == r_whole.real_tokens
    for (name, a), b in zip(whole.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("how", ["same size, other bytes", "truncated model.safetensors"])
def test_a_damaged_newest_checkpoint_is_skipped_for_the_older_one_in_process(tmp_path, tiny_model_factory, tiny_tokenized, loaders,
                                                                             metric, capsys, how):
    """The default run's damaged-checkpoint test (the integration tier damages a SIGKILLed CLI run's)."""
    data = tiny_tokenized["train"].select(range(40))
    whole = tiny_model_factory(seed=3)
    r_whole, cfg = run(train_manual, whole, data, loaders, metric, tmp_path / "whole")
    killed = tiny_model_factory(seed=3)
    handle = kill_at_forward(killed, 15)
    with pytest.raises(Killed):
        run(train_manual, killed, data, loaders, metric, tmp_path / "run", Checkpointer(tmp_path / "run", "4", cfg.to_dict()))
    handle.remove()
    assert [p.name for p in checkpoints_in(tmp_path / "run")] == ["step-00000008", "step-00000012"]
    DAMAGE[how][0](tmp_path / "run" / CHECKPOINT_DIR / "step-00000012")
    capsys.readouterr()
    resumed = tiny_model_factory(seed=99)
    r_resumed, _ = run(train_manual, resumed, data, loaders, metric, tmp_path / "run",
                       Checkpointer(tmp_path / "run", "4", cfg.to_dict(), resume=True))
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: checkpoint")]
    assert len(warning) == 1 and "step-00000012 is damaged" in warning[0] and "resuming from step-00000008" in warning[0]
    assert r_resumed.step_losses == r_whole.step_losses
    for (name, a), b in zip(whole.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), name


def test_a_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path, tiny_model_factory, tiny_tokenized, loaders, metric, monkeypatch):
    import mrpc_check.pipeline.checkpoint as checkpoint

    data = tiny_tokenized["train"].select(range(24))
    real_replace = os.replace
    saves = {"n": 0}

    def dies_on_second_rename(src, dst):
        if Path(dst).parent.name == CHECKPOINT_DIR:
            saves["n"] += 1
            if saves["n"] == 2:
                raise Killed()  # files written, rename not done: what a kill mid-save leaves
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", dies_on_second_rename)
    cfg = make_config(device="cpu", batch_size=4, epochs=2, lr=1e-3, output_dir=str(tmp_path))
    with pytest.raises(Killed):
        run(train_manual, tiny_model_factory(), data, loaders, metric, tmp_path, Checkpointer(tmp_path, "2", cfg.to_dict()))
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    assert [p.name for p in checkpoints_in(tmp_path)] == ["step-00000002"]
    resumed, _ = run(train_manual, tiny_model_factory(seed=5), data, loaders, metric, tmp_path,
                     Checkpointer(tmp_path, "2", cfg.to_dict(), resume=True))
    assert resumed.optimizer_steps == 12 and resumed.final_lr == 0.0


def test_resume_refuses_another_recipe(tmp_path, tiny_model_factory, tiny_tokenized, loaders, metric):
    data = tiny_tokenized["train"].select(range(16))
    _, cfg = run(train_manual, tiny_model_factory(), data, loaders, metric, tmp_path, Checkpointer(tmp_path, "epoch", make_config(device="cpu", batch_size=4, epochs=2, lr=1e-3, output_dir=str(tmp_path)).to_dict()))
    other = make_config(device="cpu", batch_size=4, epochs=2, lr=2e-3, output_dir=str(tmp_path)).to_dict()
    with pytest.raises(ConfigError, match="lr=0.001 \\(now 0.002\\)"):
        run(train_manual, tiny_model_factory(), data, loaders, metric, tmp_path, Checkpointer(tmp_path, "epoch", other, resume=True))


def test_non_finite_loss_names_the_last_good_checkpoint(tmp_path, tiny_model_factory, tiny_tokenized, loaders, metric):
    model = tiny_model_factory()
    poison_forward(model, at_call=6)
    cfg = make_config(device="cpu", batch_size=4, epochs=1, output_dir=str(tmp_path))
    with pytest.raises(TrainingError, match="step 6 .*last good checkpoint .*step-00000004"):
        run(train_manual, model, tiny_tokenized["train"], loaders, metric, tmp_path, Checkpointer(tmp_path, "2", cfg.to_dict()))
    saved = load_file(str(latest_checkpoint(tmp_path) / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in saved.values())


# --- through the CLI, with a real SIGKILL -------------------------------------------------------

@pytest.fixture(scope="module")
def cli_assets(tmp_path_factory, tiny_model_factory, mrpc_tokenizer):
    root = tmp_path_factory.mktemp("assets")
    model_dir = root / "model"
    tiny_model_factory(seed=0).save_pretrained(model_dir)
    mrpc_tokenizer.save_pretrained(model_dir)
    glue = root / "glue"
    glue.mkdir()
    data = synthetic_mrpc(320, 16, seed=2)  # 40 steps of 8 per epoch
    for name, split in (("train.tsv", "train"), ("dev.tsv", "validation")):
        rows = [f"{r['label']}\t{2 * i}\t{2 * i + 1}\t{r['sentence1']}\t{r['sentence2']}" for i, r in enumerate(data[split])]
        (glue / name).write_text("\n".join([HEADER, *rows]) + "\n")
    return str(model_dir), str(glue)


def one_thread_main(argv):
    """`main` in this process with the killed subprocess's thread count: the same reduction
    order in every kernel, so the comparison can be bitwise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def cli_args(model_dir, glue, out, *extra):
    return ["train", "--model", model_dir, "--data", glue, "--epochs", "2", "--batch-size", "8", "--lr", "1e-3",
            "--device", "cpu", "--output-dir", str(out), *extra]


# Injected by the test, not the package: a pause after the weights are written, so that the kill
# lands while a checkpoint is half-saved.
SLOW_SAVE = """
import sys, time
import mrpc_check.pipeline.checkpoint as c
real = c.save_checkpoint
def slow(out, model, *a, **k):
    import safetensors.torch as st
    real_save = st.save_model
    def save_then_wait(m, path):
        real_save(m, path)
        if "--slow-save" in sys.argv:
            time.sleep(0.4)
    st.save_model = save_then_wait
    try:
        return real(out, model, *a, **k)
    finally:
        st.save_model = real_save
c.save_checkpoint = slow
from mrpc_check.cli import main
sys.exit(main([a for a in sys.argv[1:] if a != "--slow-save"]))
"""


def start_and_kill(args, out, until, timeout=120):
    """Start `mrpc-check train` in a process, SIGKILL it once ``until(out)`` holds."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not until(out):
            if proc.poll() is not None:
                pytest.fail(f"the run ended (rc {proc.returncode}) before it could be killed: {proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run never reached the point to kill it at")
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()


def same_run(a: Path, b: Path):
    ra, rb = (json.loads((x / "report.json").read_text()) for x in (a, b))
    assert ra["metrics"] == rb["metrics"]
    assert ra["history"] == rb["history"]
    wa, wb = (load_file(str(x / "model" / "model.safetensors")) for x in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (b / CHECKPOINT_DIR).exists()  # cleared once the results were written


@pytest.fixture(scope="module")
def uninterrupted(cli_assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    assert one_thread_main(cli_args(*cli_assets, out)) == 0
    return out


@pytest.mark.integration
def test_sigkill_mid_epoch_then_resume(cli_assets, uninterrupted, tmp_path):
    out = tmp_path / "run"
    args = cli_args(*cli_assets, out, "--checkpoint-every", "10")
    start_and_kill(args, out, lambda o: (o / CHECKPOINT_DIR / "step-00000050").is_dir())  # in epoch 2 of 2
    assert one_thread_main([*args, "--resume"]) == 0
    same_run(uninterrupted, out)


@pytest.mark.integration
def test_sigkill_while_saving_then_resume(cli_assets, uninterrupted, tmp_path):
    out = tmp_path / "run"
    args = cli_args(*cli_assets, out, "--checkpoint-every", "20")

    def saving_after_a_complete_one(o):
        folder = o / CHECKPOINT_DIR
        return folder.is_dir() and checkpoints_in(o) and any(p.name.startswith(".tmp-") and (p / "model.safetensors").exists() for p in folder.iterdir())

    start_and_kill([*args, "--slow-save"], out, saving_after_a_complete_one)
    assert any(p.name.startswith(".tmp-") for p in (out / CHECKPOINT_DIR).iterdir())  # the half-written one
    assert one_thread_main([*args, "--resume"]) == 0
    same_run(uninterrupted, out)


class TestResumeErrors:
    def test_nothing_to_resume(self, cli_assets, tmp_path, capsys):
        assert main([*cli_args(*cli_assets, tmp_path / "empty"), "--resume"]) == 2
        assert "no checkpoint" in capsys.readouterr().err

    def test_finished_run(self, cli_assets, uninterrupted, capsys):
        assert main([*cli_args(*cli_assets, uninterrupted), "--resume"]) == 2
        assert "nothing to resume" in capsys.readouterr().err

    def test_bad_every(self, cli_assets, tmp_path, capsys):
        assert main([*cli_args(*cli_assets, tmp_path / "o"), "--checkpoint-every", "0"]) == 2
        assert "--checkpoint-every takes 'epoch' or a positive number" in capsys.readouterr().err


def test_same_seed_same_report(cli_assets, uninterrupted, tmp_path):
    out = tmp_path / "again"
    assert one_thread_main(cli_args(*cli_assets, out)) == 0
    same_run(uninterrupted, out)


# --- faults: damaged checkpoints, preemption, a full disk ---------------------------------------

@pytest.fixture(scope="module")
def killed_after_step_50(cli_assets, tmp_path_factory):
    """A run SIGKILLed in epoch 2 with checkpoints every 10 steps: step-40 and step-50 kept (--keep-checkpoints 2)."""
    out = tmp_path_factory.mktemp("killed") / "run"
    args = cli_args(*cli_assets, out, "--checkpoint-every", "10")
    start_and_kill(args, out, lambda o: (o / CHECKPOINT_DIR / "step-00000050" / "manifest.json").is_file())
    # (A kill between the rename of step-50 and the removal of step-30 leaves three: older ones go after.)
    assert [p.name for p in checkpoints_in(out)][-2:] == ["step-00000040", "step-00000050"]
    return out, args


def truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "truncated state.pt": (lambda c: truncate(c / "state.pt"), "state.pt is"),
    "truncated model.safetensors": (lambda c: truncate(c / "model.safetensors"), "model.safetensors is"),
    "broken progress.json": (lambda c: (c / "progress.json").write_text('{"epoch": 1, "batc'), "progress.json is"),
    "missing file": (lambda c: (c / "state.pt").unlink(), "state.pt missing"),
    "same size, other bytes": (lambda c: (c / "state.pt").write_bytes(bytes(reversed((c / "state.pt").read_bytes()))), "SHA-256"),
}


@pytest.mark.integration
@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_newest_checkpoint_is_named_and_the_older_one_resumed(killed_after_step_50, uninterrupted, tmp_path, capsys, how):
    import shutil

    src, args = killed_after_step_50
    out = tmp_path / "run"
    shutil.copytree(src, out)
    damage_it, said = DAMAGE[how]
    damage_it(out / CHECKPOINT_DIR / "step-00000050")
    resume = [a if a != str(src) else str(out) for a in args] + ["--resume"]
    assert one_thread_main(resume) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: checkpoint")]
    assert len(warning) == 1 and "step-00000050 is damaged" in warning[0] and said in warning[0]
    assert "resuming from step-00000040" in warning[0]
    same_run(uninterrupted, out)


@pytest.mark.integration
def test_no_usable_checkpoint_is_one_line_exit_2_and_nothing_deleted(killed_after_step_50, tmp_path, capsys):
    import shutil

    src, args = killed_after_step_50
    out = tmp_path / "run"
    shutil.copytree(src, out)
    before = [p.name for p in checkpoints_in(out)]
    for ckpt in checkpoints_in(out):
        if (ckpt / "model.safetensors").exists():  # a kill mid-removal of the oldest leaves it part-deleted: damaged already
            truncate(ckpt / "model.safetensors")
    assert main([a if a != str(src) else str(out) for a in args] + ["--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no usable checkpoint" in err and "step-00000040: model.safetensors is" in err and "--overwrite" in err
    assert [p.name for p in checkpoints_in(out)] == before


@pytest.mark.integration
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_epoch_checkpoints_that_step_and_resume_is_bitwise(cli_assets, uninterrupted, tmp_path, sig, code):
    out = tmp_path / "run"
    args = cli_args(*cli_assets, out, "--checkpoint-every", "50")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "mrpc_check", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / CHECKPOINT_DIR / "step-00000050" / "manifest.json").is_file():  # in epoch 2 of 2
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be signalled"
        time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    (line,) = [text for text in err.splitlines() if "stopped by" in text]
    step = int(line.split("after optimizer step ")[1].split(";")[0])
    assert 50 < step < 80 and f"step-{step:08d}" in line and "--resume" in line  # the next step, not the periodic one
    assert latest_checkpoint(out).name == f"step-{step:08d}" and not (out / "report.json").exists()
    assert one_thread_main([*args, "--resume"]) == 0
    same_run(uninterrupted, out)


@pytest.mark.parametrize("loop", [train_manual, train_accelerate], ids=["manual", "accelerate"])
def test_a_stop_request_ends_at_a_step_with_a_checkpoint_and_resumes_bitwise(tmp_path, tiny_model_factory, tiny_tokenized, loaders, metric, loop):
    from mrpc_check.errors import Preempted

    data = tiny_tokenized["train"].select(range(40))
    whole = tiny_model_factory(seed=3)
    r_whole, cfg = run(loop, whole, data, loaders, metric, tmp_path / "whole")
    stopped = tiny_model_factory(seed=3)
    ckpt = Checkpointer(tmp_path / "run", None, cfg.to_dict())  # no periodic checkpoints at all
    handle = poison_forward(stopped, at_call=15, make=lambda o: setattr(ckpt, "stop_signal", signal.SIGTERM) or o)
    with pytest.raises(Preempted) as stop:
        run(loop, stopped, data, loaders, metric, tmp_path / "run", ckpt)
    handle.remove()
    # Forwards 1-10 are epoch 1, 11-12 its evaluation: forward 15 belongs to step 13, where the run stops.
    assert stop.value.exit_code == 143 and latest_checkpoint(tmp_path / "run").name == "step-00000013"
    resumed = tiny_model_factory(seed=99)
    r_resumed, _ = run(loop, resumed, data, loaders, metric, tmp_path / "run", Checkpointer(tmp_path / "run", None, cfg.to_dict(), resume=True))
    assert r_resumed.step_losses == r_whole.step_losses
    for (name, a), b in zip(whole.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), name


def test_a_full_disk_at_a_checkpoint_stops_with_one_line_and_keeps_the_previous_one(cli_assets, tmp_path, capsys, monkeypatch):
    import errno

    import mrpc_check.pipeline.checkpoint as ckpt_module
    from mrpc_check.pipeline.checkpoint import damage

    real, saves = torch.save, []

    def save_until_the_disk_fills(obj, path, *a, **k):
        saves.append(path)
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path, *a, **k)

    monkeypatch.setattr(ckpt_module.torch, "save", save_until_the_disk_fills)
    out = tmp_path / "run"
    assert main(cli_args(*cli_assets, out, "--checkpoint-every", "10")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "checkpoint at step 20 not written" in err and "no space left on device" in err and "step-00000010 is intact" in err
    assert [p.name for p in checkpoints_in(out)] == ["step-00000010"] and damage(checkpoints_in(out)[0]) is None
    assert not [p for p in (out / CHECKPOINT_DIR).iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.integration
def test_sigkill_with_accumulation_and_length_grouping_then_resume(cli_assets, tmp_path):
    """Accumulation 3 over 40 batches (a short last group each epoch) and shuffled length buckets: resume is still bitwise."""
    flags = ("--grad-accum", "3", "--group-by-length")
    whole = tmp_path / "whole"
    assert one_thread_main(cli_args(*cli_assets, whole, *flags)) == 0
    out = tmp_path / "run"
    args = cli_args(*cli_assets, out, *flags, "--checkpoint-every", "5")
    start_and_kill(args, out, lambda o: (o / CHECKPOINT_DIR / "step-00000020" / "manifest.json").is_file())  # epoch 2: 14 steps each
    assert one_thread_main([*args, "--resume"]) == 0
    same_run(whole, out)
    assert json.loads((out / "report.json").read_text())["train"]["optimizer_steps"] == 28
