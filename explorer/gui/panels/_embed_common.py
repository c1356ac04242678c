"""Plot helpers shared by the embedding and LayerNorm panels: theme from the application palette,
plot styling at projector-readable sizes, a token/category axis that thins its labels to fit, and
a view frame (caption + "?" above a plot).
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .. import theme as th
from .base import Caption


def theme_for(widget: QWidget) -> th.Theme:
    """The light or dark theme, whichever matches the widget's (the application's) palette."""
    window = widget.palette().color(QPalette.ColorRole.Window)
    return th.DARK if window.lightness() < 128 else th.LIGHT


def font(pt: int = th.FONT_PT, bold: bool = False) -> QFont:
    f = QFont()
    f.setPointSize(pt)
    f.setBold(bold)
    return f


def style_plot(plot: pg.PlotItem, theme: th.Theme) -> None:
    """Axis pens, tick fonts and label colours of one plot for ``theme``."""
    fg = QColor(theme.foreground)
    for name in ("left", "bottom", "right", "top"):
        ax = plot.getAxis(name)
        ax.setPen(pg.mkPen(fg))
        ax.setTextPen(pg.mkPen(fg))
        ax.setTickFont(font(th.FONT_PT))
        ax.setSIPrefixEnableRanges(())  # pyqtgraph still computes a scale when the prefix is turned off
        ax.enableAutoSIPrefix(False)  # "(x0.001)" on an axis puzzles learners: show plain numbers
        if ax.label is not None:
            ax.label.setDefaultTextColor(fg)
            ax.label.setFont(font(th.LABEL_PT))
    if plot.titleLabel is not None:
        plot.titleLabel.item.setDefaultTextColor(fg)
    legend = plot.legend
    if legend is not None:
        legend.setLabelTextColor(fg)
        legend.setLabelTextSize(f"{th.FONT_PT}pt")
        for _sample, label in legend.items:  # setAttr alone does not re-render existing labels
            label.setText(label.text)
        legend.setBrush(pg.mkBrush(QColor(theme.background).lighter(100)))
        legend.setPen(pg.mkPen(QColor(theme.grid)))


def major_ticks_only(plot: pg.PlotItem) -> None:
    """Major ticks and grid lines only, for the 2-D maps: their units carry little meaning, and the
    minor grid costs more paint time than the points themselves."""
    for name in ("left", "bottom"):
        plot.getAxis(name).setStyle(maxTickLevel=0)


def set_label(plot: pg.PlotItem, side: str, text: str, theme: th.Theme) -> None:
    """An axis label in the theme's colour; a no-op when nothing changed (setLabel re-lays out)."""
    ax = plot.getAxis(side)
    key = (text, theme.foreground)
    if getattr(ax, "_label_key", None) == key:
        return
    ax._label_key = key
    plot.setLabel(side, text, **{"color": theme.foreground, "font-size": f"{th.LABEL_PT}pt"})


def contrast_text(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (WCAG relative luminance)."""
    c = QColor(color)

    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    lum = 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())
    return "#000000" if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else "#FFFFFF"


class PassiveScatter(pg.ScatterPlotItem):
    """A scatter that never takes a click, so the interactive item under it gets it. (pyqtgraph
    hands clicks to every item near the cursor in z order, whatever its accepted buttons.)"""

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph's name)
        ev.ignore()


class LabelAxis(pg.AxisItem):
    """An axis whose ticks are integer positions labelled with given strings (token characters, LN
    site names). It shows every label that fits and thins them (every 2nd, 5th, 10th …) when the
    axis is too short or zoomed out, so labels never pile on top of each other."""

    def __init__(self, orientation: str = "bottom", **kw) -> None:
        super().__init__(orientation, **kw)
        self.labels: list[str] = []
        self._label_px = 14.0
        self.setTickFont(font(th.FONT_PT))

    def set_labels(self, labels: list[str]) -> None:
        labels = list(labels)
        if labels == self.labels:
            return
        self.labels = labels
        fm = QFontMetrics(self.style.get("tickFont") or font(th.FONT_PT))
        widest = max((fm.horizontalAdvance(s) for s in labels[:2000]), default=10)
        if self.orientation in ("left", "right"):
            widest = fm.height()
        self._label_px = widest + 6.0
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph's name)
        n = len(self.labels)
        if n == 0 or size <= 0:
            return []
        lo, hi = max(0, math.ceil(minVal)), min(n - 1, math.floor(maxVal))
        if hi < lo:
            return []
        per_label = size / max(maxVal - minVal, 1e-9)  # pixels per integer step
        need = self._label_px / max(per_label, 1e-9)
        stride = 1
        for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
            stride = s
            if s >= need:
                break
        start = int(math.ceil(lo / stride) * stride)
        return [(float(stride), [float(v) for v in range(start, hi + 1, stride)])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        out = []
        for v in values:
            i = int(round(v))
            out.append(self.labels[i] if 0 <= i < len(self.labels) and abs(v - i) < 1e-6 else "")
        return out


class LegendAutoHide(QObject):
    """Hides a plot's legend while its widget is too small for the legend to leave the data
    visible (a narrow dock), and shows it again when there is room (a big window, an export)."""

    def __init__(self, widget: QWidget, legend, min_w: int, min_h: int) -> None:
        super().__init__(widget)
        self.legend, self.min_w, self.min_h = legend, min_w, min_h
        widget.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 (Qt's name)
        if ev.type() == QEvent.Type.Resize:
            size = ev.size()
            self.legend.setVisible(size.width() >= self.min_w and size.height() >= self.min_h)
        return False


class ViewFrame(QWidget):
    """A caption with "?" above one view widget."""

    def __init__(self, caption: str, help_text: str, view: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.caption = Caption(caption, help_text)
        self.caption.label.setFont(font(th.FONT_PT))
        self.view = view
        lay.addWidget(self.caption)
        lay.addWidget(view, 1)


def themed_plot_widget(theme: th.Theme, **kw) -> pg.PlotWidget:
    w = pg.PlotWidget(**kw)
    w.setBackground(theme.background)
    style_plot(w.getPlotItem(), theme)
    return w
