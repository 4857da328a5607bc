"""Model, optimizer and schedule: boundaries with exact numbers."""

import pytest
import torch

from mrpc_check.errors import ConfigError, ModelError
from mrpc_check.pipeline.model import (
    autocast_dtype,
    build_optimizer,
    build_scheduler,
    load_model,
    optimizer_steps,
    parameter_count,
    resolve_checkpoint,
    resolve_device,
    warmup_steps_for,
)

# 2-layer, 32-wide BERT over the 30,522-token uncased vocabulary:
# embeddings 993,216 + 2 layers x 8,544 + pooler 1,056 + classifier 66.
TINY_PARAMS = 1_011_426


def one_param_sgd(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lrs_over(scheduler, steps):
    """The lr in force before each of ``steps`` optimizer steps, then the one after the last."""
    seen = []
    for _ in range(steps):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    seen.append(scheduler.get_last_lr()[0])
    return seen


class TestLinearScheduleNoWarmup:
    @pytest.fixture
    def lrs(self):
        return lrs_over(build_scheduler(one_param_sgd(), total_steps=10), 12)

    def test_start_at_peak(self, lrs):
        assert lrs[0] == 1.0

    def test_mid_decay(self, lrs):
        assert lrs[5] == 0.5

    def test_last_step_reaches_exactly_zero(self, lrs):
        assert lrs[9] == pytest.approx(0.1) and lrs[10] == 0.0

    def test_never_negative(self, lrs):
        assert lrs[11] == 0.0 and lrs[12] == 0.0 and min(lrs) == 0.0


class TestLinearScheduleWithWarmup:
    @pytest.fixture
    def lrs(self):
        return lrs_over(build_scheduler(one_param_sgd(), total_steps=10, warmup_steps=4), 12)

    def test_start_at_zero(self, lrs):
        assert lrs[0] == 0.0

    def test_mid_warmup(self, lrs):
        assert lrs[2] == 0.5

    def test_end_of_warmup_is_peak(self, lrs):
        assert lrs[4] == 1.0

    def test_mid_decay(self, lrs):
        assert lrs[7] == 0.5

    def test_last_step_zero_never_negative(self, lrs):
        assert lrs[10] == 0.0 and min(lrs) == 0.0

    def test_ratio_rounds_up_to_whole_steps(self):
        assert warmup_steps_for(10, warmup_ratio=0.25) == 3
        assert warmup_steps_for(10, warmup_steps=20) == 10
        sched = build_scheduler(one_param_sgd(), total_steps=10, warmup_ratio=0.4)
        assert lrs_over(sched, 4)[4] == 1.0


class TestStepCount:
    @pytest.mark.parametrize("batches,accum,epochs,expected", [(459, 1, 3, 1377), (459, 2, 3, 690), (10, 3, 2, 8), (8, 4, 1, 2)])
    def test_ceil_of_batches_over_accumulation_times_epochs(self, batches, accum, epochs, expected):
        assert optimizer_steps(batches, accum, epochs) == expected


class TestOptimizer:
    def test_is_torch_adamw_without_decay_by_default(self, tiny_model_factory):
        opt = build_optimizer(tiny_model_factory(), lr=5e-5)
        assert type(opt) is torch.optim.AdamW
        assert [g["weight_decay"] for g in opt.param_groups] == [0.0]

    def test_biases_and_layernorm_exempt_from_decay(self, tiny_model_factory):
        model = tiny_model_factory()
        opt = build_optimizer(model, lr=5e-5, weight_decay=0.01)
        names = {id(p): n for n, p in model.named_parameters()}
        decayed = {names[id(p)] for p in opt.param_groups[0]["params"]}
        exempt = {names[id(p)] for p in opt.param_groups[1]["params"]}
        assert opt.param_groups[0]["weight_decay"] == 0.01 and opt.param_groups[1]["weight_decay"] == 0.0
        assert all(n.endswith(".bias") or "LayerNorm" in n for n in exempt)
        assert not any(n.endswith(".bias") or "LayerNorm" in n for n in decayed)
        assert "bert.embeddings.word_embeddings.weight" in decayed and "classifier.weight" in decayed
        assert len(decayed) + len(exempt) == len(names)


class TestTinyModel:
    def test_pinned_parameter_count_and_output_shape(self, tiny_model_factory):
        model = tiny_model_factory()
        assert parameter_count(model) == TINY_PARAMS
        out = model(input_ids=torch.tensor([[101, 2000, 102, 2001, 102]]), labels=torch.tensor([1]))
        assert out.logits.shape == (1, 2) and out.loss.ndim == 0

    def test_logits_do_not_depend_on_padding(self, tiny_model_factory, mrpc_tokenizer):
        from mrpc_check.pipeline.batching import make_collator
        from mrpc_check.pipeline.tokenize import encode_pairs

        model = tiny_model_factory(seed=1).eval()
        short = dict(encode_pairs(mrpc_tokenizer, "the cat sat", "a cat sat"), labels=0)
        long = dict(encode_pairs(mrpc_tokenizer, "the company said shares rose sharply " * 5, "shares rose"), labels=1)
        collator = make_collator(mrpc_tokenizer)
        with torch.no_grad():
            alone = model(**collator([short])).logits[0]
            padded = model(**collator([short, long])).logits[0]
        assert collator([short, long])["attention_mask"][0].sum() < collator([short, long])["input_ids"].shape[1]
        torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)


class TestCheckpoints:
    def test_minilm_preset_is_a_local_folder(self, mrpc_vocab_checkpoint):
        from pathlib import Path

        assert (Path(mrpc_vocab_checkpoint) / "config.json").is_file()

    def test_hub_ids_pass_through(self):
        assert resolve_checkpoint("bert-base-uncased") == "bert-base-uncased"
        assert resolve_checkpoint("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"

    def test_missing_local_folder(self, tmp_path):
        with pytest.raises(ModelError, match="does not exist: pass --model minilm"):
            resolve_checkpoint(str(tmp_path / "nothing"))

    def test_folder_without_weights(self, tmp_path, tiny_model_factory):
        tiny_model_factory().config.save_pretrained(tmp_path)
        with pytest.raises(ModelError, match="has no weights"):
            load_model(resolve_checkpoint(str(tmp_path)), ["a", "b"])

    def test_head_of_another_size(self, tmp_path, tiny_model_factory):
        three = tiny_model_factory(num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
        three.save_pretrained(tmp_path)
        with pytest.raises(ModelError, match="head of another size"):
            load_model(str(tmp_path), ["not_equivalent", "equivalent"])

    def test_unreachable_hub_id_offline(self, monkeypatch):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(ModelError, match="--model minilm"):
            load_model("someone/not-a-cached-model", ["a", "b"])

    def test_saved_and_loaded_as_safetensors_without_remote_code(self, tmp_path, tiny_model_factory):
        tiny_model_factory().save_pretrained(tmp_path)
        assert (tmp_path / "model.safetensors").is_file() and not (tmp_path / "pytorch_model.bin").exists()
        model = load_model(str(tmp_path), ["not_equivalent", "equivalent"])
        assert model.config.id2label == {0: "not_equivalent", 1: "equivalent"}


class TestDevice:
    def test_fp16_refused_on_cpu(self):
        with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
            autocast_dtype("fp16", torch.device("cpu"))
        assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16

    @pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where there is no CUDA")
    def test_cuda_requested_without_one(self):
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


class TestOptimizerKernel:
    def test_fused_where_torch_supports_it(self, tiny_model_factory):
        opt = build_optimizer(tiny_model_factory(), lr=5e-5)
        if tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 4):
            assert opt.defaults["fused"] is True
        else:
            assert opt.defaults["foreach"] is True

    def test_falls_back_to_foreach(self, tiny_model_factory, monkeypatch):
        real = torch.optim.AdamW

        def no_fused(params, **kwargs):
            if kwargs.get("fused"):
                raise RuntimeError("fused not supported")
            return real(params, **kwargs)

        monkeypatch.setattr(torch.optim, "AdamW", no_fused)
        opt = build_optimizer(tiny_model_factory(), lr=5e-5)
        assert opt.defaults["foreach"] is True and not opt.defaults["fused"]


class TestDropoutAndFreezing:
    """`--dropout` and `--freeze-layers` (both in `--fast`): observed in what the model does, not only in its config."""

    @pytest.fixture
    def batch(self, mrpc_tokenizer):
        return dict(mrpc_tokenizer(["the cat sat on the mat"], ["a cat was on a mat"], return_tensors="pt"))

    def test_no_dropout_makes_two_training_forwards_identical(self, tiny_model_dir, batch):
        # A metamorphic relation: in train mode, dropout draws new masks per forward; at rate 0 it draws none.
        for dropout, identical in ((0.0, True), (None, False)):
            model = load_model(tiny_model_dir, ["not_equivalent", "equivalent"], dropout=dropout).train()
            torch.manual_seed(0)
            first = model(**batch).logits
            second = model(**batch).logits
            assert torch.equal(first, second) == identical, f"dropout={dropout}"

    def test_the_saved_config_records_the_rate(self, tiny_model_dir):
        model = load_model(tiny_model_dir, ["not_equivalent", "equivalent"], dropout=0.0)
        rates = {k: v for k, v in model.config.to_dict().items() if "dropout" in k and isinstance(v, float)}
        assert rates and set(rates.values()) == {0.0}

    def test_frozen_layers_get_no_gradient_and_the_rest_do(self, tiny_model_dir, batch):
        model = load_model(tiny_model_dir, ["not_equivalent", "equivalent"], freeze_layers=1).train()
        model(**batch, labels=torch.tensor([1])).loss.backward()
        got_grad = {n for n, p in model.named_parameters() if p.grad is not None}
        frozen = {n for n, _ in model.named_parameters() if ".embeddings." in n or ".layer.0." in n}
        assert frozen and not (got_grad & frozen)
        assert got_grad == {n for n, _ in model.named_parameters()} - frozen  # layer 1, pooler, head
        assert build_optimizer(model, 1e-3).param_groups[0]["params"]  # the optimizer holds only what trains
        held = {id(p) for g in build_optimizer(model, 1e-3).param_groups for p in g["params"]}
        assert not any(id(p) in held for n, p in model.named_parameters() if n in frozen)

    def test_freezing_every_layer_is_refused_naming_the_limit(self, tiny_model_dir):
        with pytest.raises(ConfigError, match="has 2 encoder layers.*at most 1"):
            load_model(tiny_model_dir, ["not_equivalent", "equivalent"], freeze_layers=2)

    def test_a_model_without_known_layers_is_refused(self):
        from mrpc_check.pipeline.model import freeze_bottom

        with pytest.raises(ConfigError, match="no encoder layers found"):
            freeze_bottom(torch.nn.Linear(2, 2), 1)
