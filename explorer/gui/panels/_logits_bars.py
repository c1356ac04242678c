"""The next-character bar chart: the top-k of softmax(logits / T) at one position.

One ``BarGraphItem`` for the bars at the current temperature and one outline-only
``BarGraphItem`` for the same characters at T = 1 (drawn when T ≠ 1, so the effect of the
temperature is visible), plus a pool of value labels; all built once and updated with ``setOpts``.
Bars are blue when sampling may pick them, grey when top-k / top-p cut them, and orange for the
character that actually comes next in the prompt. When that character is outside the top-k it is
added after a "…" gap, so it is always on the chart. Hovering a bar shows its raw logit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QToolTip

from .. import theme as th
from ._attn_style import LabelAxis, apply_plot_theme, tick_font

MAX_VALUE_LABELS = 30


@dataclass
class BarData:
    """What one chart shows. Arrays are (n,) over the bars, left to right."""

    ids: np.ndarray  # token ids
    labels: list[str]  # visible characters
    probs: np.ndarray  # softmax(logits / T)
    probs_t1: np.ndarray  # softmax(logits)
    logits: np.ndarray  # raw logits
    sampling: np.ndarray  # probability under temperature + top-k + top-p (0 = cut)
    ranks: np.ndarray  # 1-based rank by logit
    actual: int | None  # id of the true next character, if the prompt has one
    temperature: float
    gap_before_last: bool = False  # the last bar is the true next character added after "…"


class NextCharBars(pg.GraphicsLayoutWidget):
    """Bar chart widget. ``barClicked(token_id)`` when a bar is clicked."""

    barClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(220, 150)
        self.setToolTip("Hover a bar for its logit; click it to decompose that logit below.")
        self.axis = LabelAxis("bottom")
        self.plot = self.addPlot(axisItems={"bottom": self.axis})
        self.plot.setLabel("left", "probability")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setLabel("bottom", "next character")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        # major grid lines only: minor ones cluttered the chart and made every repaint several times dearer
        self.plot.getAxis("left").setStyle(maxTickLevel=0)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.ref = pg.BarGraphItem(x=[], height=[], width=0.8, brush=None,
                                   pen=pg.mkPen(th.OKABE_ITO["vermillion"], width=2, style=Qt.PenStyle.DashLine))
        self.ref.setZValue(3)
        self.plot.addItem(self.bars)
        self.plot.addItem(self.ref)
        self.legend = self.plot.addLegend(offset=(-8, 4), labelTextSize=f"{th.FONT_PT - 2}pt", colCount=2)
        for colour, name in ((th.OKABE_ITO["blue"], "can be sampled"), (th.OKABE_ITO["grey"], "cut by top-k / top-p"),
                             (th.OKABE_ITO["orange"], "actual next character")):
            self.legend.addItem(pg.BarGraphItem(x=[], height=[], width=1, brush=colour), name)
        self.legend.addItem(pg.PlotDataItem(pen=self.ref.opts["pen"]), "the same characters at T = 1")
        self.value_labels: list[pg.TextItem] = []
        for _ in range(MAX_VALUE_LABELS + 1):
            t = pg.TextItem("", anchor=(0.5, 1.0))
            t.setFont(tick_font(th.FONT_PT - 2))
            t.setVisible(False)
            self.plot.addItem(t)
            self.value_labels.append(t)
        self.data: BarData | None = None
        self._x = np.zeros(0)
        self._theme = th.LIGHT
        self.scene().sigMouseMoved.connect(self._on_moved)
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.apply_theme(th.LIGHT)

    def apply_theme(self, theme: th.Theme) -> None:
        self._theme = theme
        apply_plot_theme(self, [self.plot], theme)
        for t in self.value_labels:
            t.setColor(theme.foreground)
        self.legend.setLabelTextColor(theme.foreground)
        bg = QColor(theme.background)
        bg.setAlpha(200)
        self.legend.setBrush(bg)
        self.legend.setPen(pg.mkPen(theme.grid))

    def brushes(self, d: BarData) -> list[QColor]:
        out = []
        for tok, s in zip(d.ids, d.sampling):
            if d.actual is not None and tok == d.actual:
                out.append(QColor(th.OKABE_ITO["orange"]))
            elif s > 0:
                out.append(QColor(th.OKABE_ITO["blue"]))
            else:
                out.append(QColor(th.OKABE_ITO["grey"]))
        return out

    def show_data(self, d: BarData | None) -> None:
        self.data = d
        if d is None or len(d.ids) == 0:
            self.bars.setOpts(x=[], height=[], brushes=[])
            self.ref.setOpts(x=[], height=[])
            self.axis.set_labels([])
            for t in self.value_labels:
                t.setVisible(False)
            self._x = np.zeros(0)
            return
        n = len(d.ids)
        x = np.arange(n, dtype=np.float64) + 0.5
        labels = list(d.labels)
        if d.gap_before_last:
            x[-1] += 1.0
            labels = labels[:-1] + ["…", labels[-1]]
        self._x = x
        pen = pg.mkPen(self._theme.foreground, width=1)
        self.bars.setOpts(x=x, height=d.probs, width=0.8, brushes=self.brushes(d), pen=pen)
        show_ref = not math.isclose(d.temperature, 1.0)
        self.ref.setOpts(x=x if show_ref else [], height=d.probs_t1 if show_ref else [], width=0.8)
        self.ref.setVisible(show_ref)
        self.axis.set_labels(labels)
        top = float(max(d.probs.max(), d.probs_t1.max() if show_ref else 0.0))
        self.plot.setYRange(0, max(0.05, top * 1.3), padding=0)  # headroom for the value labels and legend
        self.plot.setXRange(0, x[-1] + 0.5, padding=0.01)
        for i, t in enumerate(self.value_labels):
            if i < n:
                v = float(d.probs[i])
                t.setText(f"{v:.2f}" if v >= 0.1 else f"{v:.3f}" if v >= 0.001 else f"{v:.0e}")
                t.setPos(x[i], d.probs[i])
        self._fit_to_size()

    def _fit_to_size(self) -> None:
        """Value labels only when each bar has room for one; the legend only when the plot is big."""
        n = len(self._x)
        width = self.plot.getViewBox().width()
        room = n and n <= MAX_VALUE_LABELS + 1 and width / (self._x[-1] + 0.5) >= 42
        for i, t in enumerate(self.value_labels):
            t.setVisible(bool(room) and i < n)
        self.legend.setVisible(self.height() >= 260 and self.width() >= 460)

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(ev)
        if hasattr(self, "legend"):  # pyqtgraph resizes once while the base class is being built
            self._fit_to_size()

    def bar_at(self, scene_pos) -> int | None:
        if self.data is None or not len(self._x):
            return None
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        px = vb.mapSceneToView(scene_pos).x()
        i = int(np.argmin(np.abs(self._x - px)))
        return i if abs(self._x[i] - px) <= 0.5 else None

    def describe(self, i: int) -> str:
        d = self.data
        tok = int(d.ids[i])
        lines = [f"'{d.labels[i]}' (id {tok}) · rank {int(d.ranks[i])}",
                 f"logit {d.logits[i]:+.4f}",
                 f"p = {d.probs[i]:.4f} at T = {d.temperature:.2f}"]
        if not math.isclose(d.temperature, 1.0):
            lines.append(f"p = {d.probs_t1[i]:.4f} at T = 1")
        lines.append(f"sampling probability {d.sampling[i]:.4f}" if d.sampling[i] > 0
                     else "cut by top-k / top-p: never sampled")
        if d.actual is not None and tok == d.actual:
            lines.append("the character that actually comes next")
        return "\n".join(lines)

    def _on_moved(self, scene_pos) -> None:
        i = self.bar_at(scene_pos)
        if i is None:
            return
        p = self.mapFromScene(scene_pos)
        QToolTip.showText(self.mapToGlobal(QPoint(int(p.x()), int(p.y()))), self.describe(i), self)

    def _on_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        i = self.bar_at(ev.scenePos())
        if i is not None:
            ev.accept()
            self.barClicked.emit(int(self.data.ids[i]))
