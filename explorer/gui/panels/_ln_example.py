"""The LayerNorm panel's worked example: one token's vector through one LayerNorm, as numbers.

``x → μ → σ → z = (x − μ)/σ → y = z·γ + β`` for the first few channels, with μ and σ taken over
all C channels, the ε the model uses, the check that z has mean 0 and std 1 before the affine
step, and a comparison with the output the model actually recorded. The numbers come from
``stats.layernorm_example``; this module only lays them out (as table rows and as HTML).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.stats import LayerNormExample, layernorm_example

COLUMNS = ["channel", "x", "x − μ", "z = (x − μ)/σ", "γ", "β", "y = z·γ + β"]


def fmt(v: float) -> str:
    """Three decimals, as the lecture's ``[-1.225, 0, 1.225]`` (so a float-rounding 1e-17 reads
    0.000); scientific only for magnitudes of 100,000 and more."""
    v = float(v)
    if abs(v) >= 1e5:
        return f"{v:.3e}"
    s = f"{v:.3f}"
    return "0.000" if s == "-0.000" else s


@dataclass(frozen=True)
class WorkedExample:
    ex: LayerNormExample
    recorded: np.ndarray | None  # the model's own output for this token, (C,)
    max_abs_diff: float | None  # |y − recorded|, largest over channels

    @property
    def C(self) -> int:
        return int(self.ex.x.shape[0])

    def rows(self, n: int | None = None) -> list[list[float]]:
        """``[channel, x, x−μ, z, γ, β, y]`` for the first ``n`` channels (all when None)."""
        ex = self.ex
        n = self.C if n is None else max(0, min(n, self.C))
        return [[c, float(ex.x[c]), float(ex.x[c] - ex.mean), float(ex.normalized[c]), float(ex.gain[c]),
                 float(ex.bias[c]), float(ex.output[c])] for c in range(n)]


def worked_example(x, gain, bias, eps: float, recorded=None) -> WorkedExample:
    ex = layernorm_example(x, gain, bias, eps)
    diff = None
    if recorded is not None:
        recorded = np.asarray(recorded, dtype=np.float64)
        diff = float(np.max(np.abs(ex.output - recorded))) if recorded.size else 0.0
    return WorkedExample(ex, recorded, diff)


def example_html(w: WorkedExample, n: int, heading: str, fg: str, accent: str, pt: int) -> str:
    """The example as rich text for a QLabel: heading, table of the first ``n`` channels, summary."""
    ex = w.ex
    C = w.C
    n = max(1, min(n, C))
    mono = ""  # the UI font's digits are already tabular; a monospace font would only widen the box
    cell = f"style='padding:2px 8px; text-align:right; white-space:nowrap; {mono}'"
    head = "".join(f"<th style='padding:2px 8px; text-align:right; white-space:nowrap'>{h}</th>" for h in COLUMNS)
    body = ""
    for r in w.rows(n):
        vals = [str(r[0])] + [fmt(v) for v in r[1:]]
        body += "<tr>" + "".join(f"<td {cell}>{v}</td>" for v in vals) + "</tr>"
    more = f"<tr><td colspan=7 style='padding:2px 8px'>… {C - n} more channels</td></tr>" if C > n else ""
    check = ""
    if w.max_abs_diff is not None:
        ok = w.max_abs_diff <= 1e-3 * max(1.0, float(np.max(np.abs(ex.output))))
        check = (f"<p>The model recorded the same y for all {C} channels "
                 f"(largest difference {w.max_abs_diff:.1e}).</p>" if ok else
                 f"<p><b>The model's recorded output differs from this by up to {w.max_abs_diff:.3g}.</b></p>")
    return (
        f"<div style='color:{fg}; font-size:{pt}pt'>"
        f"<p><b>{heading}</b><br>C = {C} channels; the first {n} are shown.</p>"
        f"<p style='{mono}'>μ = mean of all {C} x = <b>{fmt(ex.mean)}</b><br>"
        f"σ² = mean of (x − μ)² = {fmt(ex.var)}<br>"
        f"ε = {ex.eps:g} &nbsp;(added so σ is never 0)<br>"
        f"σ = √(σ² + ε) = <b>{fmt(ex.std)}</b></p>"
        f"<table cellspacing=0 style='border-collapse:collapse'><tr>{head}</tr>{body}{more}</table>"
        f"<p style='{mono}'>z over all {C} channels: mean = <b style='color:{accent}'>"
        f"{fmt(ex.normalized_mean)}</b>, std = <b style='color:{accent}'>{fmt(ex.normalized_std)}</b>"
        f"<br>(normalised: mean 0, std 1, before γ and β rescale and shift it"
        f"{'; the std is a little under 1 because ε was added to σ²' if fmt(ex.normalized_std) != '1.000' else ''})</p>"
        f"{check}</div>"
    )
