"""The manual loop: losses, not "it ran"."""

import math

import pytest
import torch

from mrpc_check.pipeline.config import make_config
from mrpc_check.errors import TrainingError
from mrpc_check.pipeline.model import build_optimizer, optimizer_steps
from mrpc_check.testing import poison_forward
from mrpc_check.pipeline.train import train_manual

NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def run(model, data, loaders, metric, batch_size=8, eval_dataset=None, **cfg):
    cfg = make_config(device="cpu", batch_size=batch_size, **cfg)
    train_loader, eval_loader = loaders(data, batch_size, eval_dataset=eval_dataset)
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    torch.manual_seed(1234)  # dropout draws from here: both sides of a comparison start equal
    return train_manual(model, optimizer, train_loader, eval_loader, cfg, metric), optimizer


@pytest.fixture(scope="module")
def metric():
    from mrpc_check.pipeline.evaluation import load_metric

    return load_metric()


class TestManualLoop:
    def test_initial_loss_is_near_ln2(self, tiny_model_factory, tiny_tokenized, loaders):
        model = tiny_model_factory().eval()
        batch = next(iter(loaders(tiny_tokenized["train"], 16)[0]))
        with torch.no_grad():
            assert model(**batch).loss.item() == pytest.approx(math.log(2), abs=0.05)

    def test_overfits_one_batch(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        one_batch = tiny_tokenized["train"].select(range(8))
        result, _ = run(tiny_model_factory(), one_batch, loaders, metric, epochs=40, lr=3e-3, scheduler="constant")
        assert result.step_losses[0] > 0.5
        assert result.step_losses[-1] < 0.05
        assert result.final_metrics["accuracy"] == 1.0

    def test_every_parameter_moves_and_stays_finite(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        model = tiny_model_factory()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        result, _ = run(model, tiny_tokenized["train"], loaders, metric, epochs=1, lr=1e-3)
        for name, param in model.named_parameters():
            assert torch.isfinite(param).all(), name
            assert not torch.equal(param, before[name]), f"{name} did not change"
        assert all(math.isfinite(x) for x in result.step_losses)

    @pytest.mark.parametrize("accum,epochs", [(1, 2), (2, 2), (4, 1)])
    def test_schedule_ends_at_exactly_zero_after_the_real_step_count(self, tiny_model_factory, tiny_tokenized, loaders, metric, accum, epochs):
        data = tiny_tokenized["train"].select(range(44))  # 11 batches of 4: the last group is short
        result, optimizer = run(tiny_model_factory(), data, loaders, metric, batch_size=4, grad_accum=accum, epochs=epochs)
        assert result.optimizer_steps == optimizer_steps(11, accum, epochs) == len(result.step_lrs)
        assert result.final_lr == 0.0 and optimizer.param_groups[0]["lr"] == 0.0
        assert result.step_lrs[0] == 5e-5 and all(b < a for a, b in zip(result.step_lrs, result.step_lrs[1:]))

    def test_accumulation_equals_the_big_batch_with_uneven_last_micro_batch(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        data = tiny_tokenized["train"].select(range(14))  # batch 8: [8, 6]; 2 x batch 4: [4, 4], [4, 2]
        big, micro = tiny_model_factory(**NO_DROPOUT), tiny_model_factory(**NO_DROPOUT)
        r_big, _ = run(big, data, loaders, metric, batch_size=8, epochs=2, lr=1e-3)
        r_micro, _ = run(micro, data, loaders, metric, batch_size=4, grad_accum=2, epochs=2, lr=1e-3)
        assert r_big.optimizer_steps == r_micro.optimizer_steps == 4
        torch.testing.assert_close(r_micro.step_losses, r_big.step_losses, atol=1e-5, rtol=1e-5)
        for (name, a), b in zip(big.named_parameters(), micro.parameters()):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)

    def test_bf16_autocast_runs_and_tracks_fp32(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        data = tiny_tokenized["train"].select(range(32))
        r32, _ = run(tiny_model_factory(**NO_DROPOUT), data, loaders, metric, epochs=1, lr=1e-3)
        r16, _ = run(tiny_model_factory(**NO_DROPOUT), data, loaders, metric, epochs=1, lr=1e-3, mixed_precision="bf16")
        assert all(math.isfinite(x) for x in r16.step_losses)
        torch.testing.assert_close(r16.step_losses, r32.step_losses, atol=0.03, rtol=0.0)
        assert r16.step_losses != r32.step_losses  # autocast really ran in bf16

    def test_gradient_clipping_bounds_the_gradient_the_optimizer_sees(self, tiny_model_factory, tiny_tokenized, loaders, metric, monkeypatch):
        norms = []
        real_step = torch.optim.AdamW.step

        def spy(self, *args, **kwargs):
            grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
            return real_step(self, *args, **kwargs)

        monkeypatch.setattr(torch.optim.AdamW, "step", spy)
        run(tiny_model_factory(), tiny_tokenized["train"].select(range(16)), loaders, metric, epochs=2, max_grad_norm=1e-3)
        assert len(norms) == 4 and max(norms) == pytest.approx(1e-3, rel=1e-4)

    def test_non_finite_loss_stops_before_the_update(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        model = tiny_model_factory()
        poison_forward(model, at_call=3)
        with pytest.raises(TrainingError, match="loss is nan at optimizer step 3 \\(epoch 1\\)"):
            run(model, tiny_tokenized["train"], loaders, metric, epochs=1)
        assert all(torch.isfinite(p).all() for p in model.parameters())

    def test_throughput_counts(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        data = tiny_tokenized["train"]
        result, _ = run(tiny_model_factory(), data, loaders, metric, epochs=2)
        lengths = [len(x) for x in data.with_format(None)["input_ids"]]
        assert result.train_samples == 2 * len(data)
        assert result.real_tokens == 2 * sum(lengths)
        assert result.padded_tokens >= result.real_tokens and result.runtime_s > 0
        assert [e["epoch"] for e in result.epochs] == [1, 2]
