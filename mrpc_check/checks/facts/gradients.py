"""How a gradient is compared with its oracle: flattened over named tensors, relative L2 error, tolerance."""

from __future__ import annotations

import torch


TOL = 1e-3  # relative L2 error; fp32 reassociation between padded batches and single examples is ~1e-6 here


def flat_gradient(grads: dict, names) -> torch.Tensor:
    """The named tensors' gradients as one vector (a missing one as nothing), in the order of ``names``."""
    return torch.cat([grads[n].reshape(-1).float() if grads.get(n) is not None else torch.zeros(0) for n in names])


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a - b| / |b| (L2)."""
    return float((a - b).norm() / b.norm().clamp_min(1e-30))
