"""No remote code, no pickle on load, no downloaded metric: checked on the code itself and at run time."""

import ast
from pathlib import Path

import pytest

import mrpc_check

PACKAGE = Path(mrpc_check.__file__).parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


def calls(name):
    """Every call of ``<anything>.name(...)`` or ``name(...)`` in the package, as (file, ast.Call)."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    found.append((path.name, node))
    return found


def keyword(node, name):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value
    return None


class TestSource:
    def test_every_torch_load_is_weights_only(self):
        loads = calls("load")
        torch_loads = [(f, n) for f, n in loads if isinstance(n.func, ast.Attribute) and getattr(n.func.value, "id", None) == "torch"]
        assert torch_loads, "expected the checkpoint loader's torch.load"
        for file, node in torch_loads:
            value = keyword(node, "weights_only")
            assert isinstance(value, ast.Constant) and value.value is True, f"{file}:{node.lineno}"

    def test_trust_remote_code_is_never_true(self):
        from_pretrained = calls("from_pretrained")
        assert len(from_pretrained) >= 2
        for file, node in from_pretrained:
            value = keyword(node, "trust_remote_code")
            assert isinstance(value, ast.Constant) and value.value is False, f"{file}:{node.lineno}"

    def test_no_pickle_module(self):
        for path in SOURCES:
            assert "import pickle" not in path.read_text(), path.name


class TestRunTime:
    def test_model_loading_passes_trust_remote_code_false(self, monkeypatch):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from mrpc_check.pipeline.model import load_model, load_tokenizer

        seen = []
        monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", lambda *a, **k: seen.append(k) or ("model", {}))
        monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: seen.append(k) or "tok")
        load_model("x", ["a", "b"])
        load_tokenizer("x")
        assert [k["trust_remote_code"] for k in seen] == [False, False]

    def test_metric_is_the_bundled_module(self, monkeypatch):
        import evaluate

        from mrpc_check.pipeline.evaluation import METRIC_PATH, load_metric

        seen = []
        monkeypatch.setattr(evaluate, "load", lambda path, **k: seen.append(path) or "metric")
        load_metric()
        assert seen == [str(METRIC_PATH)] and Path(seen[0]).is_relative_to(PACKAGE)

    def test_checkpoint_loading_refuses_pickled_objects(self, tmp_path, tiny_model_factory):
        import pickle

        import torch

        from mrpc_check.pipeline.checkpoint import Progress, load_checkpoint, save_checkpoint
        from mrpc_check.pipeline.model import build_optimizer, build_scheduler

        model = tiny_model_factory()
        optimizer = build_optimizer(model, 1e-3)
        scheduler = build_scheduler(optimizer, 10)
        path = save_checkpoint(tmp_path, model, optimizer, scheduler, Progress(steps=1), {})

        class Evil:
            def __reduce__(self):
                return (print, ("code ran on load",))

        torch.save({"optimizer": Evil()}, path / "state.pt")
        with pytest.raises(pickle.UnpicklingError, match="(?i)weights.only"):
            load_checkpoint(path, model, optimizer, scheduler, {})
