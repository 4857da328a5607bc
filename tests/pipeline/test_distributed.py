"""Two CPU processes (gloo) running the Accelerate loop, against one process with the global batch.

The processes are started with torchrun, as `accelerate launch --multi_gpu` does: on a CPU-only
machine `accelerate launch --cpu` starts a single process, while Accelerate picks up torchrun's
WORLD_SIZE/RANK and runs MULTI_CPU over gloo.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mrpc_check.checks.distributed import free_port
from mrpc_check.pipeline.config import make_config
from mrpc_check.pipeline.model import build_optimizer
from mrpc_check.testing import make_tiny_model, synthetic_mrpc
from mrpc_check.pipeline.tokenize import tokenize_dataset
from mrpc_check.pipeline.train import train_manual

# torchrun processes: the battery's 2-process checks (tests/checks/test_multiprocess.py) cover the same loop in the default run.
pytestmark = [pytest.mark.distributed, pytest.mark.integration]

WORKER = Path(__file__).with_name("distributed_worker.py")
ACCUM = 2  # per process: 4 batches of 4 per epoch -> 2 optimizer steps of 2 x 2 x 4 = 16 examples


TORCHRUN_ENV = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")


def _torchrun(logs: Path, *args: str) -> list:
    """torchrun on 2 local CPU processes running ``args``; its own logs in ``logs`` (left to itself, it
    makes a folder in the system temp folder and never removes it)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1", "--master_addr", "127.0.0.1",
            "--master_port", str(free_port()), "--log-dir", str(logs), *args]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, mrpc_vocab_checkpoint):
    out = tmp_path_factory.mktemp("ddp")
    proc = subprocess.run(_torchrun(out / "torchrun-logs", str(WORKER), str(out), str(ACCUM)), env=TORCHRUN_ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file

    return json.loads((out / "result.json").read_text()), load_file(str(out / "weights.safetensors"))


@pytest.fixture(scope="module")
def one_process_run(mrpc_tokenizer, loaders):
    """One process, batch 8 = 2 processes x batch 4, same seed, same data, same accumulation."""
    from mrpc_check.pipeline.evaluation import load_metric

    data = tokenize_dataset(synthetic_mrpc(32, 13, seed=4), mrpc_tokenizer, max_length=40)
    cfg = make_config(device="cpu", batch_size=8, eval_batch_size=4, grad_accum=ACCUM, epochs=2, lr=1e-3)
    model = make_tiny_model(len(mrpc_tokenizer), seed=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    train_loader, eval_loader = loaders(data["train"], 8, seed=cfg.seed, eval_dataset=data["validation"], eval_batch_size=4)
    result = train_manual(model, build_optimizer(model, cfg.lr), train_loader, eval_loader, cfg, load_metric())
    return result, model


class TestTwoProcesses:
    def test_ran_on_two_processes(self, two_process_run):
        assert two_process_run[0]["num_processes"] == 2

    def test_same_weights_as_one_process_with_twice_the_batch(self, two_process_run, one_process_run):
        _, weights = two_process_run
        _, model = one_process_run
        for name, param in model.state_dict().items():
            torch.testing.assert_close(weights[name], param, atol=1e-5, rtol=1e-4, msg=name)

    def test_schedule_sized_after_prepare_reaches_zero(self, two_process_run, one_process_run):
        info, _ = two_process_run
        assert info["final_lr"] == 0.0
        assert info["optimizer_steps"] == one_process_run[0].optimizer_steps == 4

    def test_evaluation_sees_every_example_exactly_once(self, two_process_run):
        assert sorted(two_process_run[0]["seen"]) == list(range(13))

    def test_metrics_equal_single_process(self, two_process_run, one_process_run):
        assert two_process_run[0]["metrics"] == pytest.approx(one_process_run[0].final_metrics)
        assert two_process_run[0]["train_samples"] == one_process_run[0].train_samples == 64


# --- preemption and resume at 2 processes, through the CLI under torchrun ----------------------

@pytest.fixture(scope="module")
def ddp_assets(tmp_path_factory, mrpc_tokenizer):
    """A dropout-free tiny model (so the 2 ranks' results depend on their data alone) and 96 training pairs."""
    from mrpc_check.testing import GLUE_HEADER

    root = tmp_path_factory.mktemp("ddp-assets")
    make_tiny_model(len(mrpc_tokenizer), seed=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).save_pretrained(root / "model")
    mrpc_tokenizer.save_pretrained(root / "model")
    data = synthetic_mrpc(96, 12, seed=5)
    (root / "glue").mkdir()
    for name, split in (("train.tsv", "train"), ("dev.tsv", "validation")):
        rows = [f"{r['label']}\t{2 * i}\t{2 * i + 1}\t{r['sentence1']}\t{r['sentence2']}" for i, r in enumerate(data[split])]
        (root / "glue" / name).write_text("\n".join([GLUE_HEADER, *rows]) + "\n")
    return str(root / "model"), str(root / "glue")


def torchrun_train(model, glue, out, *extra, wait=True):
    """`mrpc-check train --loop accelerate` on 2 CPU processes (batch 4 each, accumulation 2: 6 steps per epoch, 6 epochs)."""
    cmd = _torchrun(out.parent / f"{out.name}-torchrun-logs", "-m", "mrpc_check", "train", "--loop", "accelerate", "--device", "cpu",
                    "--model", model, "--data", glue, "--epochs", "6", "--batch-size", "4", "--grad-accum", "2", "--lr", "1e-3",
                    "--output-dir", str(out), *extra)
    if wait:
        return subprocess.run(cmd, env=TORCHRUN_ENV, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, env=TORCHRUN_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_sigterm_on_two_processes_stops_both_at_one_step_and_resume_sees_the_same_data(ddp_assets, tmp_path):
    import signal
    import time

    from safetensors.torch import load_file

    whole = torchrun_train(*ddp_assets, tmp_path / "whole", "--group-by-length")
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = tmp_path / "run"
    proc = torchrun_train(*ddp_assets, out, "--checkpoint-every", "4", "--group-by-length", wait=False)
    deadline = time.monotonic() + 240
    while not (out / "checkpoints" / "step-00000008" / "manifest.json").is_file():  # in epoch 2 of 6
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be signalled"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGTERM)  # as Slurm or Kubernetes do: every process of the job at once
    _, err = proc.communicate(timeout=120)
    stops = sorted({line.split("after optimizer step ")[1].split(";")[0] for line in err.splitlines() if "stopped by SIGTERM" in line})
    assert len(stops) == 1, err[-3000:]  # both ranks named the same step
    step = int(stops[0])
    assert step > 8 and (out / "checkpoints" / f"step-{step:08d}" / "manifest.json").is_file()
    resumed = torchrun_train(*ddp_assets, out, "--checkpoint-every", "4", "--group-by-length", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Dropout-free, same thread count: the same rows on each rank give the same numbers, bit for bit.
    a, b = (json.loads((d / "report.json").read_text()) for d in (tmp_path / "whole", out))
    assert a["history"] == b["history"] and a["metrics"]["validation"] == b["metrics"]["validation"]
    wa, wb = (load_file(str(d / "model" / "model.safetensors")) for d in (tmp_path / "whole", out))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert b["train"]["optimizer_steps"] == 36 and b["train"]["final_lr"] == 0.0
