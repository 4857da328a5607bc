"""What the optimizer holds: the tensors exempt from decay by name, and a failure its membership explains."""

from __future__ import annotations


def exempt(name: str) -> bool:
    """Biases and LayerNorm weights: BERT's recipe (and the Trainer) give them no weight decay."""
    lowered = name.lower()
    return lowered.endswith("bias") or "layernorm" in lowered or "layer_norm" in lowered or ".ln" in lowered


MEMBERSHIP = "the optimizer's parameters"  # in the bug of a membership failure: gradients and clipping follow from it


def membership_explains(battery, verdict):
    """``verdict`` as a consequence of the optimizer check when that failed on which tensors it holds."""
    from mrpc_check.checks.verdict import explained_by, judge

    if verdict.status == "fail" and MEMBERSHIP in judge(battery, "optimizer").bug:
        return explained_by(battery, verdict, "optimizer")
    return verdict
