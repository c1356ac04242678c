"""The text view of attention, as BertViz's head view draws it: the prompt itself, each character's
background shaded by how much the selected query position attends to it.

The shade's opacity is ``weight / max weight`` of the row, so the most-attended key is always
fully shaded; the caption states that largest weight and hovering a character shows its exact
weight. Characters after the query are in its future: they are greyed and struck through, because
the causal mask hides them. Clicking a character makes it the query.
"""
from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import QEvent, QUrl, Signal
from PySide6.QtWidgets import QTextBrowser, QToolTip

from .. import theme as th
from ._attn_style import mono_font


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    return f"rgba({r},{g},{b},{max(0.0, min(1.0, alpha)):.3f})"


def attention_text_html(chars: list[str], weights: np.ndarray, query: int, theme: th.Theme) -> str:
    """HTML for ``chars`` (the raw prompt characters) shaded by ``weights`` (T,), the query's row."""
    T = len(chars)
    if T == 0:
        return f"<p style='color:{theme.foreground}'>Empty prompt.</p>"
    w = np.asarray(weights, dtype=np.float64)
    wmax = float(np.max(w[: query + 1])) if query >= 0 else 0.0
    shade = th.OKABE_ITO["orange"]
    parts = [f"<div style='color:{theme.foreground}; line-height:150%'>"]
    for i, ch in enumerate(chars):
        glyph = "⏎" if ch == "\n" else ("&nbsp;" if ch == " " else ("⇥" if ch == "\t" else html.escape(ch)))
        if i > query:
            style = f"color:{th.OKABE_ITO['grey']}; text-decoration:line-through"
        else:
            alpha = (w[i] / wmax) if wmax > 0 else 0.0
            style = f"background-color:{_rgba(shade, alpha)}; color:{theme.foreground}; text-decoration:none"
            if i == query:
                style += f"; font-weight:bold; text-decoration:underline; color:{th.OKABE_ITO['vermillion']}"
        parts.append(f"<a href='pos:{i}' style='{style}'>{glyph}</a>")
        if ch == "\n":
            parts.append("<br>")
    parts.append("</div>")
    return "".join(parts)


class AttentionText(QTextBrowser):
    """Read-only rich-text view. ``charClicked(i)`` when the user clicks character ``i``."""

    charClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFont(mono_font(th.FONT_PT + 1))
        self.setMinimumHeight(70)
        self.setToolTip("")
        self.anchorClicked.connect(self._on_anchor)
        self.chars: list[str] = []
        self.weights = np.zeros(0)
        self.query = -1
        self.viewport().setMouseTracking(True)

    def show_row(self, chars: list[str], weights: np.ndarray, query: int | None, theme: th.Theme) -> None:
        self.chars = list(chars)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.query = -1 if query is None else int(query)
        bar = self.verticalScrollBar().value()
        self.setHtml(attention_text_html(self.chars, self.weights, self.query, theme))
        self.verticalScrollBar().setValue(bar)

    def describe(self, i: int) -> str:
        from ...core.tokenizer import display_char

        ch = display_char(self.chars[i])
        q = self.query
        if i > q:
            return f"'{ch}' (position {i}) comes after the query: masked"
        return f"query {q} → '{ch}' (position {i}): weight {self.weights[i]:.4f}"

    def _on_anchor(self, url: QUrl) -> None:
        s = url.toString()
        if s.startswith("pos:"):
            self.charClicked.emit(int(s[4:]))

    def viewportEvent(self, ev) -> bool:  # noqa: N802 (Qt API)
        if ev.type() == QEvent.Type.ToolTip:
            href = self.anchorAt(ev.pos())
            if href.startswith("pos:"):
                i = int(href[4:])
                if 0 <= i < len(self.chars):
                    QToolTip.showText(ev.globalPos(), self.describe(i), self)
                    return True
            QToolTip.hideText()
            ev.ignore()
            return True
        return super().viewportEvent(ev)
