"""The ``nn.Linear`` worked example: one logit of ``lm_head`` written out with the model's numbers.

``lm_head`` is ``nn.Linear(n_embd, vocab_size)``: its weight W is stored as (vocab_size, n_embd)
and it computes ``y = x @ W.T + b``. For one position, x is the n_embd vector after ``ln_f``
(``ln_final.hook_normalized``), and one logit is the dot product of x with one row of W plus one
bias: ``y[tok] = Σ_c x[c]·W[tok, c] + b[tok]``. ``linear_example`` computes that sum with
``stats.decompose_logit`` and ``linear_example_html`` lays it out with the largest contributing
channels. For nanoGPT's tied weights it says W *is* the token embedding table.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...core.stats import LogitDecomposition, decompose_logit
from ...core.tokenizer import display_char
from .. import theme as th

if TYPE_CHECKING:  # the panels only read traces; the type is for readers
    from ...core.trace import Trace

TOP_CHANNELS = 8


@dataclass(frozen=True)
class LinearExample:
    position: int
    token: int
    x: np.ndarray  # (C,) ln_f output at the position
    weight_row: np.ndarray  # (C,) W[token]
    decomposition: LogitDecomposition
    displayed_logit: float  # trace.logits[position, token], what the chart shows
    has_bias: bool
    tied: bool
    shape_w: tuple[int, int]  # (vocab_size, n_embd)


def lm_head_weight(trace: Trace) -> tuple[np.ndarray, bool]:
    """W of lm_head (V, C) and whether it is the token embedding table (tied weights)."""
    tied = bool(trace.config.tie_weights)
    w = trace.params.get("lm_head.weight")
    if w is None and tied:
        w = trace.params.get("token_embedding_table.weight")
    if w is None:
        raise KeyError("this trace carries no lm_head weight")
    return np.asarray(w), tied


def linear_example(trace: Trace, position: int, token: int, top: int = TOP_CHANNELS) -> LinearExample:
    """Decompose ``logits[position, token]`` into per-channel products and the bias."""
    if not 0 <= position < trace.T:
        raise IndexError(f"position {position} is outside the prompt (T = {trace.T})")
    if not 0 <= token < len(trace.vocab):
        raise IndexError(f"token {token} is outside the vocabulary (size {len(trace.vocab)})")
    W, tied = lm_head_weight(trace)
    b = trace.params.get("lm_head.bias")
    x = np.asarray(trace.acts["ln_final.hook_normalized"][position], dtype=np.float64)  # (C,)
    dec = decompose_logit(x, W, b, token, top=top)
    return LinearExample(position=position, token=token, x=x, weight_row=np.asarray(W[token], np.float64),
                         decomposition=dec, displayed_logit=float(trace.logits[position, token]),
                         has_bias=b is not None, tied=tied, shape_w=tuple(W.shape))


def linear_example_html(ex: LinearExample, trace: Trace, theme: th.Theme, chosen: bool = False) -> str:
    V, C = ex.shape_w
    d = ex.decomposition
    tok = html.escape(display_char(trace.vocab[ex.token]))
    at = html.escape(display_char(trace.tokens[ex.position]))
    dot = float(d.contributions.sum())
    muted = th.OKABE_ITO["grey"]
    code = f"font-family:'DejaVu Sans Mono',monospace; color:{theme.foreground}"
    which = "the token you clicked" if chosen else "the top token"
    # the channel table is a monospace block with padded columns rather than an HTML <table>: Qt's
    # rich-text table layout costs several milliseconds per update, a <pre> block a tenth of that
    head = f"W[{ex.token},c]"
    widths = (max(3, len(str(C - 1))), 7, max(7, len(head)), 7, 8)  # narrow: the view is often a side column
    cells = ("c", "x[c]", head, "product", "Σ so far")
    rows = [" ".join(html.escape(t.rjust(w)) for t, w in zip(cells, widths))]
    running = 0.0
    for c in d.top_channels:
        running += d.contributions[c]
        sign_colour = th.OKABE_ITO["blue"] if d.contributions[c] >= 0 else th.OKABE_ITO["vermillion"]
        rows.append(
            f"{str(c).rjust(widths[0])} {ex.x[c]:>+{widths[1]}.3f} {ex.weight_row[c]:>+{widths[2]}.3f} "
            f"<span style='color:{sign_colour}'><b>{d.contributions[c]:>+{widths[3]}.3f}</b></span> "
            f"<span style='color:{muted}'>{running:>+{widths[4]}.3f}</span>")
    rest = dot - sum(d.contributions[c] for c in d.top_channels)
    n_rest = C - len(d.top_channels)
    bias_line = (f"b[{ex.token}] = {d.bias:+.4f}" if ex.has_bias else
                 "no bias: this lm_head is nn.Linear(..., bias=False), so b = 0")
    w_line = (f"W = lm_head.weight is <b>the token embedding table</b> (nanoGPT ties the weights), "
              f"so W[{ex.token}] is the embedding of '{tok}' and the logit measures how well x "
              f"lines up with it." if ex.tied else
              "W = lm_head.weight, learned separately from the token embedding table.")
    check = "✓" if abs(d.logit - ex.displayed_logit) < 1e-3 * max(1.0, abs(ex.displayed_logit)) else "≠"
    return (
        f"<div style='color:{theme.foreground}'>"
        f"<p style='{code}'>lm_head = nn.Linear(in_features={C}, out_features={V}, bias={ex.has_bias})<br>"
        f"W: ({V}, {C}) = (vocab_size, n_embd) · x: ({C},) · b: ({V},)<br>"
        f"y = x @ W.T + b → ({V},) logits, one per character</p>"
        f"<p>x is the n_embd = {C} vector after ln_f at position {ex.position} ('{at}'). {w_line}</p>"
        f"<p>For {which} '<b>{tok}</b>' (id {ex.token}):</p>"
        f"<p style='{code}'>y[{ex.token}] = x · W[{ex.token}] + b[{ex.token}] = Σ<sub>c</sub> x[c]·W[{ex.token},c]"
        f" + b[{ex.token}]<br>"
        f"&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;= {dot:+.4f} {'+' if d.bias >= 0 else '−'} {abs(d.bias):.4f}"
        f" = <b>{d.logit:+.4f}</b> &nbsp;{check} logit shown: {ex.displayed_logit:+.4f}<br>"
        f"{bias_line}</p>"
        f"<p>The {len(d.top_channels)} channels with the largest |x[c]·W[{ex.token},c]|:</p>"
        f"<pre style='{code}'>" + "\n".join(rows) + "\n"
        f"<span style='color:{muted}'>{('the other ' + str(n_rest) + ' channels').ljust(sum(widths[:3]) + 2)}</span>"
        f" {rest:>+{widths[3]}.3f} <span style='color:{muted}'>{dot:>+{widths[4]}.3f}</span></pre></div>"
    )
