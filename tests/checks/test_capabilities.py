"""Declared capabilities: a feature a loop does not have is declared, never varied, and its checks skip; an
undeclared feature the loop ignores fails naming both readings; names are checked with "did you mean"."""

import json

import pytest

from mrpc_check.checks.contract import FEATURES, AdapterError, Recipe, capabilities


def _adapter(**attrs):
    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        return []

    for key, value in attrs.items():
        setattr(adapter, key, value)
    return adapter


class TestCapabilities:
    def test_default_is_every_feature(self):
        caps = capabilities(_adapter())
        assert caps.features == frozenset(FEATURES) and not caps.declared and caps.absent() == []

    def test_declared_absent_features_run_at_their_neutral_value(self):
        caps = capabilities(_adapter(supports={"warmup"}))
        recipe = caps.neutral(Recipe(grad_accum=2, max_grad_norm=1.0, warmup_steps=2, weight_decay=0.1, mixed_precision="bf16"))
        assert (recipe.grad_accum, recipe.max_grad_norm, recipe.warmup_steps, recipe.weight_decay, recipe.mixed_precision) == (1, None, 2, 0.0, "no")

    def test_run_modes_may_be_declared_in_the_same_place(self):
        caps = capabilities(_adapter(supports={"grad_accum", "resume", "distributed"}))
        assert caps.resumable and caps.distributed and "resume" not in caps.features

    @pytest.mark.parametrize("value,said", [({"grad_acum"}, "did you mean 'grad_accum'"), ("grad_accum", "give a set")])
    def test_a_wrong_declaration_is_one_line_naming_the_fix(self, value, said):
        with pytest.raises(AdapterError, match=said):
            capabilities(_adapter(supports=value))


def test_a_mistyped_name_gets_did_you_mean(capsys):
    from mrpc_check.cli import main

    assert main(["verify", "--loop", "exampel"]) == 2
    assert "did you mean 'example'" in capsys.readouterr().err
    assert main(["verify", "--loop", "example", "--checks", "schedul"]) == 2
    assert "did you mean 'schedule'" in capsys.readouterr().err
    assert main(["verify", "--loop", "mrpc_check.checks.broken:PlainLop"]) == 2
    assert "did you mean 'PlainLoop'" in capsys.readouterr().err


def test_a_declared_loop_is_judged_on_the_rest_and_json_carries_the_declaration(bert, tmp_path, capsys):
    """The twin that ignores grad_accum and clipping, declared: those checks skip, everything else passes."""
    from mrpc_check.cli import main

    out = tmp_path / "v.json"
    spec = "mrpc_check.checks.broken:DeclaresNoAccumulation"
    assert main(["verify", "--loop", spec, "--checks", "grouping,schedule,clipping,accumulation,optimizer", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "declared absent (not varied, checks on them skipped): grad_accum, max_grad_norm" in table
    data = json.loads(out.read_text())
    assert data["capabilities"]["absent"] == ["grad_accum", "max_grad_norm"] and data["capabilities"]["resumable"]
    status = {v["check"]: v["status"] for v in data["verdicts"]}
    assert status == {"grouping": "skip", "clipping": "skip", "accumulation": "skip", "schedule": "pass", "optimizer": "pass"}
    assert sum(data["counts"].values()) == len(data["verdicts"]) == 5
    assert all("declared" in v["figure"] for v in data["verdicts"] if v["status"] == "skip")
