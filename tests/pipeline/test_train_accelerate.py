"""The Accelerate loop is the manual loop plus deltas: same losses, same weights, schedule to 0."""

import math

import pytest
import torch

from mrpc_check.pipeline.config import make_config
from mrpc_check.pipeline.model import build_optimizer, optimizer_steps
from mrpc_check.testing import reset_accelerate
from mrpc_check.pipeline.train import train_manual
from mrpc_check.pipeline.train_accelerate import train_accelerate


@pytest.fixture(scope="module")
def metric():
    from mrpc_check.pipeline.evaluation import load_metric

    return load_metric()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps process-wide singletons; each test builds its own Accelerator."""
    yield
    reset_accelerate()


def run(loop, model, data, loaders, metric, batch_size=4, **overrides):
    cfg = make_config(device="cpu", batch_size=batch_size, **overrides)
    train_loader, eval_loader = loaders(data, batch_size, eval_dataset=data.select(range(13)))
    optimizer = build_optimizer(model, cfg.lr)
    torch.manual_seed(99)  # dropout masks draw from the global generator in both loops
    return loop(model, optimizer, train_loader, eval_loader, cfg, metric), optimizer


class TestAgainstManualLoop:
    @pytest.mark.parametrize("accum", [1, 2])
    def test_same_losses_and_final_weights(self, tiny_model_factory, tiny_tokenized, loaders, metric, accum):
        data = tiny_tokenized["train"].select(range(36))  # 9 batches of 4: the last group is short
        manual, accel = tiny_model_factory(seed=5), tiny_model_factory(seed=5)
        r_manual, _ = run(train_manual, manual, data, loaders, metric, grad_accum=accum, epochs=2, lr=1e-3)
        r_accel, _ = run(train_accelerate, accel, data, loaders, metric, grad_accum=accum, epochs=2, lr=1e-3)
        assert r_accel.optimizer_steps == r_manual.optimizer_steps == optimizer_steps(9, accum, 2)
        torch.testing.assert_close(r_accel.step_losses, r_manual.step_losses, atol=1e-6, rtol=1e-5)
        assert r_accel.step_lrs == r_manual.step_lrs
        for (name, a), b in zip(manual.named_parameters(), accel.parameters()):
            torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5, msg=name)
        assert r_accel.epochs == r_manual.epochs
        assert r_accel.train_samples == r_manual.train_samples and r_accel.real_tokens == r_manual.real_tokens

    @pytest.mark.parametrize("accum", [1, 3])
    def test_schedule_reaches_exactly_zero(self, tiny_model_factory, tiny_tokenized, loaders, metric, accum):
        data = tiny_tokenized["train"].select(range(40))
        result, optimizer = run(train_accelerate, tiny_model_factory(), data, loaders, metric, grad_accum=accum, epochs=2)
        assert result.final_lr == 0.0 and optimizer.param_groups[0]["lr"] == 0.0
        assert result.optimizer_steps == math.ceil(10 / accum) * 2

    def test_bf16_on_cpu_stays_close_to_fp32(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        data = tiny_tokenized["train"].select(range(24))
        nodrop = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        r32, _ = run(train_accelerate, tiny_model_factory(**nodrop), data, loaders, metric, epochs=1, lr=1e-3)
        reset_accelerate()
        r16, _ = run(train_accelerate, tiny_model_factory(**nodrop), data, loaders, metric, epochs=1, lr=1e-3, mixed_precision="bf16")
        torch.testing.assert_close(r16.step_losses, r32.step_losses, atol=0.03, rtol=0.0)
        assert r16.step_losses != r32.step_losses

