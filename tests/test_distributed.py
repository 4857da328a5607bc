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
from mrpc_check.config import make_config
from mrpc_check.model import build_optimizer
from mrpc_check.testing import make_tiny_model, synthetic_mrpc
from mrpc_check.tokenize import tokenize_dataset
from mrpc_check.train import train_manual

pytestmark = pytest.mark.distributed

WORKER = Path(__file__).with_name("distributed_worker.py")
ACCUM = 2  # per process: 4 batches of 4 per epoch -> 2 optimizer steps of 2 x 2 x 4 = 16 examples


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, mrpc_vocab_checkpoint):
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(WORKER), str(out), str(ACCUM)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file

    return json.loads((out / "result.json").read_text()), load_file(str(out / "weights.safetensors"))


@pytest.fixture(scope="module")
def one_process_run(mrpc_tokenizer, loaders):
    """One process, batch 8 = 2 processes x batch 4, same seed, same data, same accumulation."""
    from mrpc_check.evaluation import load_metric

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
