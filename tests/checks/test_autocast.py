"""bf16 autocast on CPU: a correct loop is judged right, and its planted bugs are still caught.

Under autocast the gradient oracles recompute each micro-batch as a correct loop does at that precision (one padded
batch, the mask passed, the same autocast), which a correct bf16 loop matches bit for bit; padding is read on the
first steps' gradients; the loss fit's tolerance is bf16's epsilon. A bf16 logits tensor is accepted as predictions.
The loops are the battery's own correct PlainLoop and its broken twins, their forwards under bf16 autocast.
"""

import pytest

from mrpc_check.checks.battery import root_causes, run_battery

CHECKS = ["inputs", "padding", "grouping", "gradients_cleared", "accumulation", "loss"]


def under_bf16(loop):
    """``loop`` (the battery's correct PlainLoop or a broken twin of it) with its forwards under
    torch.autocast("cpu", dtype=torch.bfloat16), as a team that adds autocast to the course loop runs it: the recipe's
    mixed_precision set to bf16 whatever the battery asks (PlainLoop autocasts its forwards by it)."""

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        return loop(model, train_dataset, eval_dataset, collator, recipe.replace(mixed_precision="bf16"))

    adapter.__name__ = f"bf16 {type(loop).__name__}"
    return adapter


def _loop(name="PlainLoop"):
    from mrpc_check.checks import broken

    return under_bf16(getattr(broken, name)())


def test_a_correct_bf16_loop_passes_the_gradient_and_padding_checks(bert):
    verdicts = run_battery(_loop(), bert, checks=CHECKS)
    assert not [v.message() for v in verdicts if v.status != "pass"]
    row = next(r for r in verdicts.effective.rows if r.name == "loss")
    assert row.mark == "=", row.observed


def test_the_autocast_is_observed(bert):
    from mrpc_check.checks.harness import Battery

    with Battery(_loop(), bert) as battery:
        observation = battery.base_run().observation
        assert observation.autocast == ("cpu", "bfloat16") and observation.logits_dtype == "bfloat16"


@pytest.mark.parametrize("twin, check", [
    ("DropsAttentionMask", "inputs"),
    ("ZeroGradOncePerEpoch", "gradients_cleared"),
    ("LossNotScaledForAccumulation", "accumulation"),
])
def test_planted_bugs_still_fail_under_bf16(bert, twin, check):
    verdicts = run_battery(_loop(twin), bert, checks=CHECKS)
    got = {v.check: v for v in verdicts}
    assert got[check].status == "fail" and check in root_causes(verdicts), [v.message() for v in verdicts]


def test_a_mask_dropped_fails_padding_under_bf16_on_its_own_oracle(bert):
    """Not only through `inputs`: the padded run's first gradients differ beyond the gradient tolerance (the twin:
    5.3e-3 at step 2; a correct bf16 loop 1.4e-7)."""
    got = {v.check: v for v in run_battery(_loop("DropsAttentionMask"), bert, checks=["padding"])}
    assert got["padding"].status == "fail" and "step 2:" in got["padding"].figure, got["padding"].message()
    figure = got["padding"].figure
    step2 = float(figure.split("step 2: ")[1].split(" ")[0])
    from mrpc_check.checks.facts.gradients import TOL

    assert step2 > TOL


def test_bf16_logits_are_accepted_as_predictions():
    """A loop that returns the bf16 logits of its autocast evaluation: the argmax of each row, as for fp32 logits."""
    import torch

    from mrpc_check.checks.contract import normalise_output

    logits = torch.tensor([[0.1, 0.9], [2.0, -1.0], [0.0, 0.5]], dtype=torch.bfloat16)
    assert normalise_output(logits, 3, "adapter").predictions == [1, 0, 1]
    assert normalise_output(logits.half(), 3, "adapter").predictions == [1, 0, 1]
