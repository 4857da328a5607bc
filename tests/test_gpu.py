"""The loops on CUDA: fp32, bf16 and fp16 (loss scaling). Skipped with a reason where there is no GPU."""

import math

import pytest
import torch

from mrpc_check.pipeline.config import make_config
from mrpc_check.pipeline.model import build_optimizer
from mrpc_check.testing import reset_accelerate
from mrpc_check.pipeline.train import train_manual
from mrpc_check.pipeline.train_accelerate import train_accelerate

pytestmark = pytest.mark.gpu
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def metric():
    from mrpc_check.pipeline.evaluation import load_metric

    return load_metric()


def run(loop, model, data, loaders, metric, **overrides):
    reset_accelerate()
    cfg = make_config(device="cuda", batch_size=8, **overrides)
    train_loader, eval_loader = loaders(data, 8)
    torch.manual_seed(0)
    return loop(model, build_optimizer(model, cfg.lr), train_loader, eval_loader, cfg, metric)


@pytest.mark.parametrize("loop", [train_manual, train_accelerate], ids=["manual", "accelerate"])
@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
def test_overfits_one_batch_on_cuda(tiny_model_factory, tiny_tokenized, loaders, metric, loop, precision):
    data = tiny_tokenized["train"].select(range(8))
    model = tiny_model_factory()
    result = run(loop, model, data, loaders, metric, epochs=40, lr=3e-3, scheduler="constant", mixed_precision=precision)
    assert next(model.parameters()).device.type == "cuda"
    assert all(math.isfinite(x) for x in result.step_losses)
    assert result.step_losses[-1] < 0.1 and result.final_metrics["accuracy"] == 1.0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_tracks_fp32_on_cuda(tiny_model_factory, tiny_tokenized, loaders, metric, precision):
    data = tiny_tokenized["train"].select(range(32))
    r32 = run(train_manual, tiny_model_factory(**NO_DROPOUT), data, loaders, metric, epochs=1, lr=1e-3)
    rlow = run(train_manual, tiny_model_factory(**NO_DROPOUT), data, loaders, metric, epochs=1, lr=1e-3, mixed_precision=precision)
    torch.testing.assert_close(rlow.step_losses, r32.step_losses, atol=0.03, rtol=0.0)


def test_manual_and_accelerate_agree_on_cuda(tiny_model_factory, tiny_tokenized, loaders, metric):
    data = tiny_tokenized["train"].select(range(32))
    manual, accel = tiny_model_factory(**NO_DROPOUT), tiny_model_factory(**NO_DROPOUT)
    r_manual = run(train_manual, manual, data, loaders, metric, epochs=2, lr=1e-3, grad_accum=2)
    r_accel = run(train_accelerate, accel, data, loaders, metric, epochs=2, lr=1e-3, grad_accum=2)
    torch.testing.assert_close(r_accel.step_losses, r_manual.step_losses, atol=1e-4, rtol=1e-4)
    assert r_accel.final_lr == r_manual.final_lr == 0.0
