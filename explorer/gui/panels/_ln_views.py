"""The four plots of the LayerNorm panel. Items are built once; a trace only calls ``setData``.

* ``PerPositionView``: mean and std of each token's vector before and after the selected LayerNorm.
* ``GainBiasView``: the site's γ and β over the channels, the largest |γ| marked.
* ``HistogramView``: one token's input values against its output values, shared bins.
* ``DepthView``: residual std (or norm) per token at every LayerNorm site, in and out.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from .. import theme as th
from ._embed_common import LabelAxis, LegendAutoHide, PassiveScatter, font, set_label, style_plot

IN_COLOR = th.OKABE_ITO["blue"]
OUT_COLOR = th.OKABE_ITO["orange"]
MARK_COLOR = th.OKABE_ITO["vermillion"]


def _in_color(theme: th.Theme) -> str:
    return IN_COLOR if theme.name == "light" else th.OKABE_ITO["sky"]


def _alpha(color: str, a: int) -> QColor:
    c = QColor(color)
    c.setAlpha(a)
    return c


def _quiet(item) -> None:
    item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
    item.setAcceptHoverEvents(False)


def _click_x(plot: pg.PlotItem, on_x: Callable[[float], None]) -> None:
    """Call ``on_x(x in data coordinates)`` when the plot area is left-clicked."""

    def handler(ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        vb = plot.getViewBox()
        if vb.sceneBoundingRect().contains(ev.scenePos()):
            on_x(vb.mapSceneToView(ev.scenePos()).x())

    plot.scene().sigMouseClicked.connect(handler)


class PerPositionView:
    """Two plots sharing the token axis: mean (top) and std (bottom), input vs output."""

    def __init__(self, theme: th.Theme, on_position: Callable[[int], None]) -> None:
        self.widget = pg.GraphicsLayoutWidget()
        self.axes = [LabelAxis("bottom"), LabelAxis("bottom")]
        self.mean_plot = self.widget.addPlot(row=0, col=0, axisItems={"bottom": self.axes[0]})
        self.std_plot = self.widget.addPlot(row=1, col=0, axisItems={"bottom": self.axes[1]})
        self.std_plot.setXLink(self.mean_plot)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.cursors = []
        legend = self.mean_plot.addLegend(offset=(8, 4), labelTextSize=f"{th.FONT_PT}pt")
        self._legend_hider = LegendAutoHide(self.widget, legend, 620, 460)
        for plot, kind in ((self.mean_plot, "mean"), (self.std_plot, "std")):
            plot.setMenuEnabled(False)
            plot.showGrid(x=False, y=True, alpha=0.2)
            ref = pg.InfiniteLine(pos=0.0 if kind == "mean" else 1.0, angle=0, movable=False)
            ref.setZValue(-5)
            plot.addItem(ref)
            self.curves[f"{kind}_ref"] = ref
            for side, label in (("in", "input x (residual stream)"), ("out", "output y (after γ, β)")):
                c = plot.plot(symbol="o", symbolSize=7, name=label if kind == "mean" else None)
                self.curves[f"{side}_{kind}"] = c
            cur = pg.LinearRegionItem(movable=False)
            cur.setZValue(-10)
            plot.addItem(cur)
            self.cursors.append(cur)
        self.message = pg.TextItem("", anchor=(0.5, 0.5))
        self.message.setFont(font(th.TITLE_PT))
        self.mean_plot.addItem(self.message, ignoreBounds=True)
        _quiet(self.message)
        _click_x(self.mean_plot, lambda x: on_position(int(round(x))))
        _click_x(self.std_plot, lambda x: on_position(int(round(x))))
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.background)
        for plot in (self.mean_plot, self.std_plot):
            style_plot(plot, theme)
        set_label(self.mean_plot, "left", "mean", theme)
        set_label(self.std_plot, "left", "std", theme)
        set_label(self.std_plot, "bottom", "token (position)", theme)
        for kind in ("mean", "std"):
            ci, co = _in_color(theme), OUT_COLOR
            self.curves[f"in_{kind}"].setPen(pg.mkPen(ci, width=2.5))
            self.curves[f"in_{kind}"].setSymbolBrush(pg.mkBrush(ci))
            self.curves[f"in_{kind}"].setSymbolPen(pg.mkPen(None))
            self.curves[f"out_{kind}"].setPen(pg.mkPen(co, width=2.5, style=Qt.PenStyle.DashLine))
            self.curves[f"out_{kind}"].setSymbolBrush(pg.mkBrush(co))
            self.curves[f"out_{kind}"].setSymbolPen(pg.mkPen(None))
            self.curves[f"{kind}_ref"].setPen(pg.mkPen(theme.grid, width=1.5, style=Qt.PenStyle.DotLine))
        for cur in self.cursors:
            cur.setBrush(pg.mkBrush(_alpha(theme.foreground, 38)))
            for ln in cur.lines:
                ln.setPen(pg.mkPen(None))
        self.message.setColor(QColor(theme.foreground))
        style_plot(self.mean_plot, theme)

    def update(self, labels: list[str], in_mean, in_std, out_mean, out_std, selected: int | None) -> None:
        x = np.arange(len(labels), dtype=np.float64)
        for ax in self.axes:
            ax.set_labels(labels)
        for key, y in (("in_mean", in_mean), ("in_std", in_std), ("out_mean", out_mean), ("out_std", out_std)):
            self.curves[key].setData(x, np.asarray(y, dtype=np.float64))
        for cur in self.cursors:
            cur.setVisible(selected is not None)
            if selected is not None:
                cur.setRegion((selected - 0.5, selected + 0.5))
        self.message.setText("" if len(labels) else "Type a prompt to see its tokens here.")
        if not len(labels):
            self.message.setPos(0.5, 0.5)
            self.mean_plot.setRange(xRange=(0, 1), yRange=(0, 1))
        else:
            self.mean_plot.enableAutoRange()
            self.std_plot.enableAutoRange()


class GainBiasView:
    """γ (top) and β (bottom) as bars over the channels; the largest |γ| channels starred."""

    N_MARKED = 5

    def __init__(self, theme: th.Theme, tip: Callable[[int], str]) -> None:
        self.widget = pg.GraphicsLayoutWidget()
        self.gain_plot = self.widget.addPlot(row=0, col=0)
        self.bias_plot = self.widget.addPlot(row=1, col=0)
        self.bias_plot.setXLink(self.gain_plot)
        self.gain_bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.bias_bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.gain_plot.addItem(self.gain_bars)
        self.bias_plot.addItem(self.bias_bars)
        self.gain_ref = pg.InfiniteLine(pos=1.0, angle=0, movable=False, label="γ = 1",
                                        labelOpts=dict(position=0.97))
        self.bias_ref = pg.InfiniteLine(pos=0.0, angle=0, movable=False)
        self.gain_plot.addItem(self.gain_ref)
        self.bias_plot.addItem(self.bias_ref)
        self.gain_hover = pg.ScatterPlotItem(size=8, hoverable=True, tip=lambda x, y, data: tip(int(data)))
        self.bias_hover = pg.ScatterPlotItem(size=8, hoverable=True, tip=lambda x, y, data: tip(int(data)))
        self.gain_plot.addItem(self.gain_hover)
        self.bias_plot.addItem(self.bias_hover)
        self.marks = PassiveScatter(size=16, symbol="star")
        self.marks.setZValue(10)
        _quiet(self.marks)
        self.gain_plot.addItem(self.marks)
        self.mark_text = [pg.TextItem("", anchor=(0.5, 1.2)) for _ in range(self.N_MARKED)]
        for t in self.mark_text:
            t.setFont(font(th.FONT_PT, bold=True))
            t.setZValue(11)
            _quiet(t)
            self.gain_plot.addItem(t)
        for p in (self.gain_plot, self.bias_plot):
            p.setMenuEnabled(False)
            p.showGrid(x=False, y=True, alpha=0.2)
        self.marked: list[int] = []
        self._shown: tuple = (None, None)
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.background)
        for p in (self.gain_plot, self.bias_plot):
            style_plot(p, theme)
        set_label(self.gain_plot, "left", "gain γ", theme)
        set_label(self.bias_plot, "left", "bias β", theme)
        set_label(self.bias_plot, "bottom", "channel", theme)
        self.gain_bars.setOpts(brush=pg.mkBrush(_in_color(theme)), pen=pg.mkPen(None))
        self.bias_bars.setOpts(brush=pg.mkBrush(th.OKABE_ITO["green"]), pen=pg.mkPen(None))
        for ref in (self.gain_ref, self.bias_ref):
            ref.setPen(pg.mkPen(theme.foreground, width=1.2, style=Qt.PenStyle.DashLine))
        self.gain_ref.label.setColor(QColor(theme.foreground))
        self.gain_ref.label.setFont(font(th.FONT_PT))
        for h in (self.gain_hover, self.bias_hover):  # invisible targets at the bar tops, for tooltips
            h.setBrush(pg.mkBrush(None))
            h.setPen(pg.mkPen(None))
        self.marks.setBrush(pg.mkBrush(MARK_COLOR))
        self.marks.setPen(pg.mkPen(theme.foreground, width=1))
        for t in self.mark_text:
            t.setColor(QColor(theme.foreground))

    def update(self, gain: np.ndarray, bias: np.ndarray) -> None:
        if gain is self._shown[0] and bias is self._shown[1]:
            return  # same weights (a new prompt): nothing to redraw
        self._shown = (gain, bias)
        C = len(gain)
        x = np.arange(C, dtype=np.float64)
        self.gain_bars.setOpts(x=x, height=np.asarray(gain, np.float64), width=0.8)
        self.bias_bars.setOpts(x=x, height=np.asarray(bias, np.float64), width=0.8)
        self.gain_hover.setData(x=x, y=np.asarray(gain, np.float64), data=np.arange(C))
        self.bias_hover.setData(x=x, y=np.asarray(bias, np.float64), data=np.arange(C))
        order = np.lexsort((np.arange(C), -np.abs(gain)))[: self.N_MARKED]
        self.marked = [int(c) for c in order]
        self.marks.setData(x=x[order], y=np.asarray(gain, np.float64)[order])
        for k, t in enumerate(self.mark_text):
            if k < len(order):
                c = int(order[k])
                t.setText(str(c))
                t.setAnchor((0.5, 1.2) if gain[c] >= 0 else (0.5, -0.2))
                t.setPos(c, float(gain[c]))
                t.setVisible(True)
            else:
                t.setVisible(False)
        self.gain_plot.setXRange(-1, C, padding=0.01)
        self.gain_plot.enableAutoRange(axis="y")
        self.bias_plot.enableAutoRange(axis="y")


class HistogramView:
    """One token's n_embd input values and output values as two histograms on shared bins."""

    def __init__(self, theme: th.Theme) -> None:
        self.widget = pg.PlotWidget()
        self.plot: pg.PlotItem = self.widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.addLegend(offset=(8, 8), labelTextSize=f"{th.FONT_PT}pt")
        self.h_in = pg.PlotDataItem(stepMode="center", fillLevel=0, name="input x")
        self.h_out = pg.PlotDataItem(stepMode="center", fillLevel=0, name="output y")
        self.plot.addItem(self.h_in)
        self.plot.addItem(self.h_out)
        self.edges = np.zeros(0)
        self.counts_in = np.zeros(0)
        self.counts_out = np.zeros(0)
        self.message = pg.TextItem("", anchor=(0.5, 0.5))
        self.message.setFont(font(th.TITLE_PT))
        _quiet(self.message)
        self.plot.addItem(self.message, ignoreBounds=True)
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.background)
        ci = _in_color(theme)
        self.h_in.setPen(pg.mkPen(ci, width=2.5))
        self.h_in.setBrush(pg.mkBrush(_alpha(ci, 90)))
        self.h_out.setPen(pg.mkPen(OUT_COLOR, width=2.5))
        self.h_out.setBrush(pg.mkBrush(_alpha(OUT_COLOR, 90)))
        self.message.setColor(QColor(theme.foreground))
        style_plot(self.plot, theme)
        set_label(self.plot, "bottom", "value", theme)
        set_label(self.plot, "left", "number of channels", theme)

    def update(self, x: np.ndarray | None, y: np.ndarray | None) -> None:
        legend = self.plot.legend
        if x is None or y is None or x.size == 0:
            self.h_in.setData([], [])
            self.h_out.setData([], [])
            self.edges = self.counts_in = self.counts_out = np.zeros(0)
            self.message.setText("Type a prompt to see a token's values here.")
            self.message.setPos(0.5, 0.5)
            self.plot.setRange(xRange=(0, 1), yRange=(0, 1))
            return
        self.message.setText("")
        both = np.concatenate([x, y]).astype(np.float64)
        bins = int(np.clip(x.size // 4, 10, 60))
        self.edges = np.histogram_bin_edges(both, bins=bins)
        self.counts_in = np.histogram(x, self.edges)[0].astype(np.float64)
        self.counts_out = np.histogram(y, self.edges)[0].astype(np.float64)
        self.h_in.setData(self.edges, self.counts_in)
        self.h_out.setData(self.edges, self.counts_out)
        for (_sample, label), v, name in zip(legend.items, (x, y), ("input x", "output y")):
            label.setText(f"{name}: mean {v.mean():.3f}, std {v.std():.3f}")
        self.plot.enableAutoRange()


class DepthView:
    """Residual std (or norm) per token at every LayerNorm site: faint line per token, the selected
    token bold; solid = LayerNorm input, dashed = its output."""

    def __init__(self, theme: th.Theme, tip: Callable[[int], str], on_site: Callable[[int], None]) -> None:
        self.axis = LabelAxis("bottom")
        self.widget = pg.PlotWidget(axisItems={"bottom": self.axis})
        self.plot: pg.PlotItem = self.widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=False, y=True, alpha=0.2)
        legend = self.plot.addLegend(offset=(8, 8), labelTextSize=f"{th.FONT_PT}pt")
        self._legend_hider = LegendAutoHide(self.widget, legend, 560, 360)
        self.all_in = pg.PlotDataItem(connect="finite")
        self.all_out = pg.PlotDataItem(connect="finite")
        self.sel_in = pg.PlotDataItem(symbol="o", symbolSize=9, name="selected token: LayerNorm input")
        self.sel_out = pg.PlotDataItem(symbol="s", symbolSize=9, name="selected token: LayerNorm output")
        self.hover = pg.ScatterPlotItem(size=12, hoverable=True, tip=lambda x, y, data: tip(int(data)))
        self.cursor = pg.LinearRegionItem(movable=False)
        for z, it in enumerate((self.cursor, self.all_in, self.all_out, self.sel_in, self.sel_out, self.hover)):
            it.setZValue(z)
            self.plot.addItem(it)
        for it in (self.all_in, self.all_out, self.sel_in, self.sel_out):
            _quiet(it)
        _click_x(self.plot, lambda x: on_site(int(round(x))))
        self.series: dict[str, np.ndarray] = {}
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.background)
        ci = _in_color(theme)
        self.all_in.setPen(pg.mkPen(_alpha(ci, 70), width=1))
        self.all_out.setPen(pg.mkPen(_alpha(OUT_COLOR, 70), width=1, style=Qt.PenStyle.DashLine))
        self.sel_in.setPen(pg.mkPen(ci, width=3.5))
        self.sel_in.setSymbolBrush(pg.mkBrush(ci))
        self.sel_in.setSymbolPen(pg.mkPen(None))
        self.sel_out.setPen(pg.mkPen(OUT_COLOR, width=3.5, style=Qt.PenStyle.DashLine))
        self.sel_out.setSymbolBrush(pg.mkBrush(OUT_COLOR))
        self.sel_out.setSymbolPen(pg.mkPen(None))
        self.hover.setBrush(pg.mkBrush(None))
        self.hover.setPen(pg.mkPen(None))
        self.cursor.setBrush(pg.mkBrush(_alpha(theme.foreground, 38)))
        for ln in self.cursor.lines:
            ln.setPen(pg.mkPen(None))
        style_plot(self.plot, theme)
        set_label(self.plot, "bottom", "LayerNorm site (in forward order)", theme)

    def set_measure_label(self, text: str) -> None:
        set_label(self.plot, "left", text, self.theme)

    def update(self, site_labels: list[str], ins: np.ndarray, outs: np.ndarray, selected: int | None,
               current_site: int) -> None:
        """``ins``/``outs``: (S, T) per site and token."""
        S = len(site_labels)
        self.axis.set_labels(site_labels)
        T = ins.shape[1] if ins.ndim == 2 else 0
        xs = np.arange(S, dtype=np.float64)
        self.series = {"in": ins, "out": outs}
        for item, M in ((self.all_in, ins), (self.all_out, outs)):
            if T:
                X = np.concatenate([np.tile(xs, (T, 1)), np.full((T, 1), np.nan)], axis=1).ravel()
                Y = np.concatenate([M.T, np.full((T, 1), np.nan)], axis=1).ravel()
                item.setData(X, Y)
            else:
                item.setData([], [])
        if selected is not None and T:
            self.sel_in.setData(xs, ins[:, selected])
            self.sel_out.setData(xs, outs[:, selected])
            self.hover.setData(x=np.concatenate([xs, xs]), y=np.concatenate([ins[:, selected], outs[:, selected]]),
                               data=np.concatenate([np.arange(S), S + np.arange(S)]))
        else:
            for it in (self.sel_in, self.sel_out):
                it.setData([], [])
            self.hover.setData([], [])
        self.cursor.setRegion((current_site - 0.4, current_site + 0.4))
        self.plot.setXRange(-0.5, S - 0.5, padding=0.02)
        self.plot.enableAutoRange(axis="y")
