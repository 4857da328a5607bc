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
    ("mrpc_check.checks.broken:_groups", r"not \(model, train_dataset"),
    ("/nonexistent/loop.py:adapter", "no file"),
])
def test_bad_specs_are_one_line_errors(spec, says):
    with pytest.raises(AdapterError, match=says) as info:
        load_adapter(spec)
    assert "\n" not in str(info.value)
