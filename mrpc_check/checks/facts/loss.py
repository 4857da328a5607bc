"""The loop's loss read off a run: the gradient its loss sent back into the logits against their probabilities.

Plain cross-entropy, label smoothing and class weights each give that gradient a closed form (:func:`infer_loss`),
and each row's weight against the mean over its step's rows. Read by the extras family and the effective recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from mrpc_check.checks.harness import LossForm

@dataclass
class LossFinding:
    """The loss the loop trained on, read off the gradient it sent back into the logits."""

    form: Optional[LossForm] = None  # None: no cross-entropy form explains the gradient
    by_model: bool = True  # the training forwards received labels (the model's own loss could be used)
    residual: float = float("nan")  # relative distance of the observed logit gradients from the fitted form
    rows: int = 0  # training rows read
    scale: tuple = ()  # (smallest, largest) weight of a row against the mean over its optimizer step's rows (1 = the mean)
    why: str = ""  # when form is None: why not

    def describe(self) -> str:
        where = "labels passed to the model" if self.by_model else "computed by the loop from the logits (no labels passed)"
        if self.form is None:
            return f"not recognised ({self.why}); {where}"
        parts = ["cross-entropy"]
        if self.form.label_smoothing:
            parts.append(f"label smoothing {self.form.label_smoothing:g}")
        if self.form.class_weights:
            parts.append("class weights " + ":".join(f"{w:.3g}" for w in self.form.class_weights))
        if self.scale and not self.form.class_weights:
            low, high = self.scale
            parts.append(f"row weight x{low:.3g}" + (f"..{high:.3g}" if abs(high - low) > 1e-3 * abs(low) else "")
                         + " the step's mean")
        return f"{', '.join(parts)} ({where}; {self.rows} rows, fit residual {self.residual:.1e})"


FIT = 1e-4  # relative residual of the logit-gradient fit: fp32 softmax and gradients agree to ~1e-6


def fit_tolerance(observation) -> float:
    """FIT in full precision; under bf16/fp16 logits, the dtype's machine epsilon (the logits' gradient arrives rounded
    to it: 2^-7 for bf16), derived from the precision the run trained at rather than fixed."""
    import torch

    dtype = getattr(torch, observation.logits_dtype or "float32", torch.float32)
    return max(FIT, float(torch.finfo(dtype).eps)) if dtype in (torch.bfloat16, torch.float16) else FIT


def _fit_residual(gamma, p0, label, forward, e, weight):
    """Relative residual of gamma = S_forward * w_label * (p0 - target_label(e)), S fitted per forward; arrays over the grid."""
    import numpy as np

    target = np.where(label == 1, e[..., None], 1 - e[..., None])  # (grid, rows): class 0's target probability
    z = np.where(label == 1, weight[..., None], 1.0) * (p0 - target)
    total = np.zeros(e.shape)
    for m in np.unique(forward):
        sel = forward == m
        zz, gg = z[..., sel], gamma[sel]
        scale = (zz * gg).sum(-1) / np.maximum((zz * zz).sum(-1), 1e-300)
        total += ((gg - scale[..., None] * zz) ** 2).sum(-1)
    return np.sqrt(total / max(float((gamma ** 2).sum()), 1e-300))


def infer_loss(battery, run) -> LossFinding:
    """Name the cross-entropy behind the gradient the loop's loss sent into the logits of every training forward.

    For two classes every cross-entropy gives row i the logit gradient ``S * w_y * (p_i - t_y)`` on
    class 0, with ``S`` one scale per forward (the mean's 1/n, an accumulation weight), ``w_y`` the
    class weight and ``t_y`` the target probability of class 0: 1 - eps/2 for label 0, eps/2 for
    label 1 under label smoothing eps. Plain cross-entropy (eps 0, equal weights) is tried first;
    failing that, (eps, w1/w0) are fitted on a grid refined by zooming. The forwards' different
    probabilities separate smoothing from class weights; the per-forward scale is the accumulation
    check's to judge.
    """
    import numpy as np

    obs = run.observation
    train = obs.train_forwards()
    finding = LossFinding(by_model=all("labels" in f.keys for f in train))
    gamma, p0, label, forward, step = [], [], [], [], []
    for m, f in enumerate(train):
        if f.logits is None or f.logit_grad is None or any(r is None for r in f.rows):
            continue
        if f.logits.shape[-1] != 2:
            finding.why = f"{f.logits.shape[-1]} classes: the loss is read for two"
            return finding
        probs = torch.softmax(f.logits.double(), -1)[:, 0]
        for i, row in enumerate(f.rows):
            gamma.append(float(f.logit_grad[i, 0]))
            p0.append(float(probs[i]))
            label.append(battery.label_of(row, run.train_labels))
            forward.append(m)
            step.append(f.steps_before)
    finding.rows = len(gamma)
    if not gamma or not any(gamma):
        finding.why = "no gradient reached the logits of a training forward"
        return finding
    gamma, p0, label, forward = map(np.asarray, (gamma, p0, label, forward))
    plain = float(_fit_residual(gamma, p0, label, forward, np.zeros(()), np.ones(())))
    if plain <= fit_tolerance(run.observation):
        e, weight, residual = 0.0, 1.0, plain
    else:
        # (eps / 2, log w1/w0) on a grid, zoomed in around the best point six times.
        lo_e, hi_e, lo_w, hi_w = -0.25, 0.5, math.log(0.05), math.log(20.0)
        for _ in range(6):
            es, ws = np.meshgrid(np.linspace(lo_e, hi_e, 41), np.linspace(lo_w, hi_w, 41), indexing="ij")
            res = _fit_residual(gamma, p0, label, forward, es, np.exp(ws))
            i, j = np.unravel_index(np.argmin(res), res.shape)
            e, log_w, residual = float(es[i, j]), float(ws[i, j]), float(res[i, j])
            de, dw = (hi_e - lo_e) / 8, (hi_w - lo_w) / 8
            lo_e, hi_e, lo_w, hi_w = e - de, e + de, log_w - dw, log_w + dw
        weight = math.exp(log_w)
        # Snap to round values when they fit as well (0.1 rather than 0.09999987).
        for cand_e in (round(2 * e, 3) / 2, 0.0):
            for cand_w in (float(f"{weight:.3g}"), 1.0):
                r = float(_fit_residual(gamma, p0, label, forward, np.asarray(cand_e), np.asarray(cand_w)))
                if r <= max(residual * 1.5, FIT / 10):
                    e, weight, residual = cand_e, cand_w, r
                    break
    finding.residual = residual
    if residual > fit_tolerance(run.observation):
        finding.why = f"no cross-entropy form fits the logit gradients (residual {residual:.1e})"
        return finding
    epsilon = round(2 * e, 4)
    weights = None if abs(weight - 1) <= 1e-3 else (1.0, float(f"{weight:.4g}"))
    if epsilon and weights:
        finding.why = f"label smoothing ~{epsilon:g} and class weights ~1:{weights[1]:g} together (not read here)"
        return finding
    finding.form = LossForm(epsilon if abs(epsilon) >= 1e-4 else 0.0, weights)
    # Each row's weight against the mean over its optimizer step's rows (1 for a mean over the step).
    step_arr = np.asarray(step)
    target = np.where(label == 1, e, 1 - e)
    z = np.where(label == 1, weight, 1.0) * (p0 - target)
    rows_in_step = {k: int((step_arr == k).sum()) for k in set(step)}
    scales = []
    for m in np.unique(forward):
        sel = forward == m
        scale = float((z[sel] * gamma[sel]).sum() / max(float((z[sel] ** 2).sum()), 1e-300))
        scales.append(scale * rows_in_step[int(step_arr[sel][0])])
    finding.scale = (min(scales), max(scales))
    return finding
