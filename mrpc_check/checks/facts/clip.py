"""A clip read off a run: the gradient backward produced against the one each step applied.

The step shrank it along the same direction to one common norm, at every step where it was larger, and left it
untouched where it was smaller: a global-norm clip at that norm (:func:`infer_clip`). Read by the clipping family,
the gradient oracles (which judge a clipped step on its raw gradient) and the effective recipe.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Optional

PURE = 1e-5  # 1 - cosine(raw, applied) below this: the step applied a multiple of the raw gradient
SAME = 1e-3  # relative agreement of norms, scales and residuals (the gradient checks' tolerance)

@dataclass
class ClipFinding:
    """What the steps did to the gradient backward produced."""

    norm: Optional[float] = None  # the global norm it was clipped at (None: no clip seen)
    binding: int = 0  # steps where the clip shrank the gradient
    steps: int = 0  # steps read (raw and applied gradients both seen)
    largest: float = 0.0  # the largest raw norm of the steps: a clip above it would not show
    scale: Optional[float] = None  # every step's gradient multiplied by this constant (not a clip)
    altered: int = 0  # steps whose applied gradient is not a multiple of the raw one (a leftover, a per-tensor clip)

    def describe(self) -> str:
        if self.norm is not None:
            return f"clips at global norm {self.norm:.4g} (bound at {self.binding} of {self.steps} steps)"
        if self.scale is not None:
            return f"every gradient multiplied by {self.scale:.4g} after backward"
        if self.altered:
            return f"gradient altered after backward at {self.altered} of {self.steps} steps (not a global-norm clip)"
        return f"none seen (raw gradient norms up to {self.largest:.3g}: a clip above that would not show)"


def infer_clip(steps: list) -> ClipFinding:
    """Clip norm, constant rescale or other change between each step's raw and applied gradient."""
    pure, altered = [], 0
    for s in steps:
        if s.raw_norm <= 0 or s.grad_norm <= 0:
            continue
        cosine = s.raw_dot / (s.raw_norm * s.grad_norm)
        if 1 - cosine > PURE:
            altered += 1
            continue
        pure.append((s.grad_norm / s.raw_norm, s.raw_norm, s.grad_norm))
    finding = ClipFinding(steps=len(pure) + altered, altered=altered, largest=max((r for _, r, _ in pure), default=0.0))
    shrunk = [(scale, raw, applied) for scale, raw, applied in pure if scale < 1 - SAME]
    if shrunk:
        norm = statistics.median(applied for _, _, applied in shrunk)
        common = all(abs(applied - norm) <= SAME * norm for _, _, applied in shrunk)
        untouched = [raw for scale, raw, _ in pure if scale >= 1 - SAME]
        if common and all(abs(scale - 1) <= SAME for scale, _, _ in pure if scale >= 1 - SAME) and all(r <= norm * (1 + SAME) for r in untouched):
            finding.norm, finding.binding = norm, len(shrunk)
            return finding
    scales = [scale for scale, _, _ in pure]
    if scales and all(abs(x - scales[0]) <= SAME * scales[0] for x in scales) and abs(scales[0] - 1) > SAME:
        finding.scale = statistics.median(scales)
    elif shrunk:
        finding.altered += len(shrunk)
    return finding


def clipped_steps(steps: list, clip: ClipFinding) -> set:
    """1-based steps whose applied gradient is the raw one shrunk to the clip norm."""
    if clip.norm is None:
        return set()
    return {k for k, s in enumerate(steps, 1) if s.raw_norm > 0 and s.grad_norm < s.raw_norm * (1 - SAME)
            and 1 - s.raw_dot / (s.raw_norm * s.grad_norm) <= PURE}
