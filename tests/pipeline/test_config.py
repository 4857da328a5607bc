import dataclasses

import pytest

from mrpc_check.pipeline.config import TrainConfig, make_config
from mrpc_check.errors import ConfigError


class TestTrainConfig:
    def test_defaults_are_the_walkthrough_recipe(self):
        cfg = TrainConfig()
        assert (cfg.model, cfg.batch_size, cfg.lr, cfg.epochs, cfg.scheduler, cfg.warmup_ratio, cfg.seed) == (
            "bert-base-uncased", 8, 5e-5, 3, "linear", 0.0, 42)

    def test_frozen(self):
        with pytest.raises(dataclasses.FrozenInstanceError):
            TrainConfig().lr = 1.0

    @pytest.mark.parametrize("field,value", [("batch_size", 0), ("batch_size", -8), ("epochs", 0), ("lr", 0.0), ("lr", -1e-5), ("grad_accum", 0), ("eval_batch_size", 0)])
    def test_zero_or_negative_rejected_naming_the_flag(self, field, value):
        with pytest.raises(ConfigError, match="--" + field.replace("_", "-")):
            make_config(**{field: value})

    @pytest.mark.parametrize("field,value", [("batch_size", "8"), ("lr", "fast"), ("group_by_length", 1), ("epochs", 2.5), ("epochs", True)])
    def test_wrong_types_rejected(self, field, value):
        with pytest.raises(ConfigError, match="must be"):
            make_config(**{field: value})

    def test_unknown_key_rejected(self):
        with pytest.raises(ConfigError, match="unknown config key.*learning_rate"):
            make_config(learning_rate=1e-4)

    def test_choices_checked(self):
        with pytest.raises(ConfigError, match="--loop"):
            make_config(loop="jax")
        with pytest.raises(ConfigError, match="--mixed-precision"):
            make_config(mixed_precision="fp8")

    def test_warmup_steps_and_ratio_are_exclusive(self):
        with pytest.raises(ConfigError, match="not both"):
            make_config(warmup_steps=10, warmup_ratio=0.1)
        with pytest.raises(ConfigError, match="warmup-ratio"):
            make_config(warmup_ratio=1.0)

    def test_checkpoint_options_need_our_loops(self):
        with pytest.raises(ConfigError, match="--checkpoint-every works with --loop manual or accelerate"):
            make_config(loop="trainer", checkpoint_every="epoch")
        with pytest.raises(ConfigError, match="--resume works with --loop manual or accelerate"):
            make_config(loop="trainer", resume=True)
        with pytest.raises(ConfigError, match="pass one"):
            make_config(resume=True, overwrite=True)
        with pytest.raises(ConfigError, match="--checkpoint-every takes"):
            make_config(checkpoint_every="often")

    def test_data_falls_back_to_environment_then_hub(self, monkeypatch):
        monkeypatch.setattr("mrpc_check.pipeline.config.SHARED_DATA", "no-such-shared-folder")  # nothing beside the checkout
        monkeypatch.setenv("MRPC_DATA", "/some/folder")
        assert make_config(data=None).data == "/some/folder"
        monkeypatch.delenv("MRPC_DATA")
        assert make_config(data=None).data == "hub"

    def test_overrides_keep_other_fields(self):
        cfg = make_config(make_config(lr=1e-4), epochs=1)
        assert (cfg.lr, cfg.epochs, cfg.batch_size) == (1e-4, 1, 8)


def test_one_data_discovery_flag_then_environment_then_shared_beside_the_checkout(tmp_path, monkeypatch):
    from mrpc_check.pipeline.config import default_data_source, discover_data

    shared = tmp_path / "shared" / "data" / "glue" / "MRPC"
    shared.mkdir(parents=True)
    (shared / "train.tsv").write_text("")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    monkeypatch.delenv("MRPC_DATA", raising=False)
    assert discover_data() == str(shared) == default_data_source()
    monkeypatch.setenv("MRPC_DATA", "/from/env")
    assert discover_data() == "/from/env"
    assert discover_data("/from/flag") == "/from/flag"
    monkeypatch.delenv("MRPC_DATA")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("mrpc_check.pipeline.config.SHARED_DATA", "no-such-shared-folder")
    assert discover_data() is None and default_data_source() == "hub"
