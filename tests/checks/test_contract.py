"""Adapters: loading by name, module or file, and one-line refusals of anything else."""

import pytest

from mrpc_check.checks.contract import AdapterError, LoopOutput, load_adapter, normalise_output


def test_outputs_are_normalised():
    import numpy as np

    assert normalise_output([1, 0, 1], 3).predictions == [1, 0, 1]
    assert normalise_output(np.array([[0.1, 0.9], [2.0, -1.0]]), 2).predictions == [1, 0]  # logits
    assert normalise_output({"predictions": [0], "metrics": {"f1": 0.0}}, 1).metrics == {"f1": 0.0}
    assert normalise_output(LoopOutput([1]), 1).predictions == [1]


@pytest.mark.parametrize("value", [None, "text", [[[1]]], [0.5, 1.0], {"predictions": [1], "metrics": 3}])
def test_wrong_outputs_are_refused_on_one_line(value):
    with pytest.raises(AdapterError) as info:
        normalise_output(value, 2)
    assert "\n" not in str(info.value)


def test_loading(tmp_path):
    assert load_adapter("manual").__name__ == "manual"
    assert callable(load_adapter("mrpc_check.checks.broken:SeedIgnored"))  # a class is instantiated
    (tmp_path / "loop.py").write_text("def adapter(model, train, evaluation, collator, recipe):\n    return []\n")
    assert load_adapter(f"{tmp_path / 'loop.py'}:adapter").__name__ == "adapter"


@pytest.mark.parametrize("spec,says", [
    ("no_colon", "package.module:adapter"),
    ("no_such_module_xyz:adapter", "cannot import"),
    ("mrpc_check.checks.broken:missing", "no attribute"),
    ("mrpc_check.checks.broken:CATALOGUE", "not a callable"),
    ("mrpc_check.checks.broken:_groups", r"your adapter takes \(iterable, size: 'int'\); the battery calls "
                                         r"adapter\(model, train_dataset, eval_dataset, collator, recipe\)"),
    ("/nonexistent/loop.py:adapter", "no file"),
])
def test_bad_specs_are_one_line_errors(spec, says):
    with pytest.raises(AdapterError, match=says) as info:
        load_adapter(spec)
    assert "\n" not in str(info.value)


def test_a_dict_without_predictions_names_its_keys():
    with pytest.raises(AdapterError, match=r"returned a dict with keys \['accuracy', 'f1'\] and no 'predictions'"):
        normalise_output({"accuracy": 0.8, "f1": 0.9}, 2)


def test_a_file_adapter_imports_the_module_beside_it(tmp_path, monkeypatch):
    """As `python loop.py` would: the adapter's folder is importable, whatever the current folder."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helpers_for_mrpc_test.py").write_text("ANSWER = [1, 0]\n")
    (folder / "loop.py").write_text("from helpers_for_mrpc_test import ANSWER\n\n"
                                    "def adapter(model, train, evaluation, collator, recipe):\n    return ANSWER\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".", str(folder))])
    adapter = load_adapter(f"{folder / 'loop.py'}:adapter")
    assert adapter(None, None, None, None, None) == [1, 0]
