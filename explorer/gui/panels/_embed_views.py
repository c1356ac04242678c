"""The four plots of the embedding panel. Each builds its pyqtgraph items once and afterwards only
moves them (``setData`` / ``setPos`` / ``setText``).

* ``TokenMapView``: the token table in 2-D, one labelled disc per token.
* ``PositionView``: the position table in 2-D, coloured by position, with a colour bar.
* ``ContextView``: the prompt's residual stream at one depth in the token table's PCA basis, and
  one token's path through the depths.
* ``DimensionsView``: cumulative explained variance against the number of PCA components.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from .. import theme as th
from ._embed_common import LegendAutoHide, PassiveScatter, font, major_ticks_only, style_plot
from ._embed_glyphs import GlyphBook

DISC_PX = 22  # a labelled token disc, big enough to read on a projector
DOT_PX = 7  # an unlabelled point (big vocabularies, background clouds)


def _pen(color, width: float = 1.0, style=Qt.PenStyle.SolidLine):
    return pg.mkPen(QColor(color), width=width, style=style)


def _faded(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def _disable_mouse(item) -> None:
    item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
    item.setAcceptHoverEvents(False)


class _PlotView:
    """A ``PlotWidget`` with theme handling shared by the views."""

    def __init__(self, theme: th.Theme) -> None:
        self.theme = theme
        self.widget = pg.PlotWidget()
        self.plot: pg.PlotItem = self.widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMenuEnabled(False)
        self.widget.setBackground(theme.background)

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.background)
        style_plot(self.plot, theme)

    def message_item(self) -> pg.TextItem:
        t = pg.TextItem("", color=self.theme.foreground, anchor=(0.5, 0.5))
        t.setFont(font(th.TITLE_PT))
        t.setZValue(50)
        _disable_mouse(t)
        self.plot.addItem(t, ignoreBounds=True)
        return t


class TokenMapView(_PlotView):
    """Every token as a disc coloured by character class with its character printed on it."""

    def __init__(self, theme: th.Theme, glyphs: GlyphBook, tip: Callable[[int], str],
                 on_click: Callable[[int], None]) -> None:
        super().__init__(theme)
        major_ticks_only(self.plot)
        self.glyphs = glyphs
        self.large = False
        self.coords = np.zeros((0, 2))
        self.vocab: list[str] = []
        self.classes = np.zeros(0, np.int64)
        self.lines = pg.PlotDataItem(connect="pairs")
        self.halo = PassiveScatter(pxMode=True, symbol="o")
        self.ring = PassiveScatter(pxMode=True, symbol="o")
        self.discs = pg.ScatterPlotItem(pxMode=True, hoverable=True,
                                        tip=lambda x, y, data: tip(int(data)))
        self.labels = PassiveScatter(pxMode=True)
        self.focus_discs = pg.ScatterPlotItem(pxMode=True, hoverable=True,
                                              tip=lambda x, y, data: tip(int(data)))
        self.focus_labels = PassiveScatter(pxMode=True)
        for z, item in enumerate((self.lines, self.halo, self.ring, self.discs, self.labels,
                                  self.focus_discs, self.focus_labels)):
            item.setZValue(z)
            self.plot.addItem(item)
        for item in (self.lines, self.halo, self.ring, self.labels, self.focus_labels):
            _disable_mouse(item)
        self.discs.sigClicked.connect(lambda _it, pts, _ev: pts and on_click(int(pts[0].data())))
        self.focus_discs.sigClicked.connect(lambda _it, pts, _ev: pts and on_click(int(pts[0].data())))
        self.legend = self.plot.addLegend(offset=(8, 8), labelTextSize=f"{th.FONT_PT}pt")
        self._legend_hider = LegendAutoHide(self.widget, self.legend, 620, 420)
        self._legend_samples: list[pg.ScatterPlotItem] = []
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        super().apply_theme(theme)
        self.halo.setPen(_pen(theme.foreground, 2.5))
        self.halo.setBrush(pg.mkBrush(None))
        self.ring.setPen(_pen(theme.accent if theme.name == "dark" else th.OKABE_ITO["vermillion"], 4))
        self.ring.setBrush(pg.mkBrush(None))
        self.lines.setPen(_pen(theme.foreground, 1.5, Qt.PenStyle.DashLine))
        for s in self._legend_samples:
            if s.opts["brush"].style() == Qt.BrushStyle.NoBrush:
                s.setPen(_pen(theme.foreground, 2.5))

    def set_legend(self, class_names: list[str], counts: np.ndarray) -> None:
        """One legend entry per class present, with how many tokens it holds, and the prompt ring."""
        self.legend.clear()
        self._legend_samples = []
        for c, name in enumerate(class_names):
            if counts[c] == 0:
                continue
            s = pg.ScatterPlotItem(symbol="o", size=14, brush=self.glyphs.class_brushes[c], pen=self.glyphs.disc_pen)
            self._legend_samples.append(s)
            self.legend.addItem(s, f"{name} ({int(counts[c])})")
        ring = pg.ScatterPlotItem(symbol="o", size=14, brush=pg.mkBrush(None), pen=_pen(self.theme.foreground, 2.5))
        self._legend_samples.append(ring)
        self.legend.addItem(ring, "in the prompt")
        style_plot(self.plot, self.theme)

    def set_table(self, coords: np.ndarray, vocab, classes: np.ndarray, large: bool) -> None:
        """A new table (new model or weights): every disc and label is placed once here."""
        self.large = large
        ids = np.arange(len(vocab))
        brushes = [self.glyphs.class_brushes[c] for c in classes]
        if large:
            self.discs.setData(pos=coords, data=ids, size=DOT_PX, symbol="o", brush=brushes,
                               pen=self.glyphs.no_pen)
            self.labels.setData([], [])
        else:
            self.discs.setData(pos=coords, data=ids, size=DISC_PX, symbol="o", brush=brushes,
                               pen=self.glyphs.disc_pen)
            self.labels.setData(pos=coords, size=DISC_PX, symbol=self.glyphs.paths(vocab),
                                brush=[self.glyphs.text_brushes[c] for c in classes], pen=self.glyphs.no_pen)
        self.vocab, self.classes = list(vocab), classes
        self.coords = np.asarray(coords, dtype=np.float64)

    def move(self, coords: np.ndarray) -> None:
        """Same table, other layout (PCA ↔ t-SNE): only positions change."""
        self.set_table(coords, self.vocab, self.classes, self.large)
        self.plot.enableAutoRange()

    def set_highlight(self, prompt_ids, selected: int | None, focus: int | None, neighbors: list[int]) -> None:
        c = self.coords
        prompt_ids = np.asarray(sorted(set(int(i) for i in prompt_ids)), dtype=np.int64)
        size_ring = (DISC_PX if not self.large else 14) + 8
        self.halo.setData(pos=c[prompt_ids] if len(prompt_ids) else np.zeros((0, 2)), size=size_ring)
        self.ring.setData(pos=c[[selected]] if selected is not None else np.zeros((0, 2)), size=size_ring + 6)
        if focus is not None and neighbors:
            seg = np.empty((2 * len(neighbors), 2))
            seg[0::2] = c[focus]
            seg[1::2] = c[neighbors]
            self.lines.setData(seg[:, 0], seg[:, 1])
        else:
            self.lines.setData([], [])
        if self.large:  # big vocabularies: label only what matters now
            show = sorted(set(prompt_ids.tolist()) | set(neighbors)
                          | ({focus} if focus is not None else set()) | ({selected} if selected is not None else set()))
            show_arr = np.asarray(show, dtype=np.int64)
            cls = self.classes[show_arr] if len(show) else []
            self.focus_discs.setData(pos=c[show_arr] if len(show) else np.zeros((0, 2)), data=show_arr, size=DISC_PX,
                                     brush=[self.glyphs.class_brushes[k] for k in cls], pen=self.glyphs.disc_pen)
            self.focus_labels.setData(pos=c[show_arr] if len(show) else np.zeros((0, 2)), size=DISC_PX,
                                      symbol=[self.glyphs.path(self.vocab[i]) for i in show],
                                      brush=[self.glyphs.text_brushes[k] for k in cls], pen=self.glyphs.no_pen)
        else:
            self.focus_discs.setData([], [])
            self.focus_labels.setData([], [])


class PositionView:
    """The position table in 2-D: points coloured by position (cividis) and joined in order."""

    def __init__(self, theme: th.Theme, tip: Callable[[int], str], on_click: Callable[[int], None]) -> None:
        self.theme = theme
        self.widget = pg.GraphicsLayoutWidget()
        self.plot: pg.PlotItem = self.widget.addPlot(row=0, col=0)
        major_ticks_only(self.plot)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMenuEnabled(False)
        self.cmap = pg.colormap.get(th.HEATMAP_CMAP)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=self.cmap, interactive=False, width=18)
        self.widget.addItem(self.bar, row=0, col=1)
        self.path = pg.PlotDataItem()
        self.used = PassiveScatter(pxMode=True, symbol="o", brush=pg.mkBrush(None))
        self.ring = PassiveScatter(pxMode=True, symbol="o", brush=pg.mkBrush(None))
        self.points = pg.ScatterPlotItem(pxMode=True, hoverable=True, size=11,
                                         tip=lambda x, y, data: tip(int(data)))
        for z, item in enumerate((self.path, self.used, self.ring, self.points)):
            item.setZValue(z)
            self.plot.addItem(item)
        for item in (self.path, self.used, self.ring):
            _disable_mouse(item)
        self.points.sigClicked.connect(lambda _it, pts, _ev: pts and on_click(int(pts[0].data())))
        self.numbers = [pg.TextItem("", anchor=(0.5, 1.3)) for _ in range(12)]
        for t in self.numbers:
            t.setFont(font(th.FONT_PT))
            t.setZValue(10)
            _disable_mouse(t)
            self.plot.addItem(t, ignoreBounds=True)
        self.coords = np.zeros((0, 2))
        self._brushes: list = []
        self._edge = pg.mkPen(QColor(0, 0, 0, 80))
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.background)
        style_plot(self.plot, theme)
        style_plot(self.bar, theme)
        self.path.setPen(_pen(theme.grid, 1.5))
        self.used.setPen(_pen(theme.foreground, 1.5))
        self.ring.setPen(_pen(th.OKABE_ITO["vermillion"] if theme.name == "light" else theme.accent, 3.5))
        for t in self.numbers:
            t.setColor(QColor(theme.foreground))

    def set_table(self, coords: np.ndarray) -> None:
        n = len(coords)
        self.coords = np.asarray(coords, dtype=np.float64)
        if len(self._brushes) != n:  # one brush per position, made once: the symbol atlas keys on them
            rgba = self.cmap.map(np.arange(n) / max(n - 1, 1), mode="byte")
            self._brushes = [pg.mkBrush(*c) for c in rgba]
        self.points.setData(pos=self.coords, data=np.arange(n), brush=self._brushes, pen=self._edge)
        self.path.setData(self.coords[:, 0], self.coords[:, 1])
        self.bar.setLevels((0, max(n - 1, 1)))
        step = max(1, int(np.ceil(n / (len(self.numbers) - 1))))
        marks = list(range(0, n, step))
        if marks and marks[-1] != n - 1 and len(marks) < len(self.numbers):
            marks.append(n - 1)
        for k, t in enumerate(self.numbers):
            if k < len(marks):
                t.setText(str(marks[k]))
                t.setPos(*self.coords[marks[k]])
                t.setVisible(True)
            else:
                t.setVisible(False)
        self.plot.enableAutoRange()

    def set_highlight(self, T: int, selected: int | None) -> None:
        T = min(T, len(self.coords))
        self.used.setData(pos=self.coords[:T], size=17)
        self.ring.setData(pos=self.coords[[selected]] if selected is not None and selected < len(self.coords)
                          else np.zeros((0, 2)), size=24)


class ContextView(_PlotView):
    """Prompt tokens at one depth of the residual stream, in the token table's PCA basis."""

    def __init__(self, theme: th.Theme, glyphs: GlyphBook, tip: Callable[[int], str],
                 on_click: Callable[[int], None]) -> None:
        super().__init__(theme)
        major_ticks_only(self.plot)
        self.glyphs = glyphs
        self.cloud = PassiveScatter(pxMode=True, size=DOT_PX, symbol="o")
        self.path = pg.PlotDataItem(symbol="o", symbolSize=7)
        self.ring = PassiveScatter(pxMode=True, symbol="o", brush=pg.mkBrush(None))
        self.discs = pg.ScatterPlotItem(pxMode=True, hoverable=True, size=DISC_PX,
                                        tip=lambda x, y, data: tip(int(data)))
        self.labels = PassiveScatter(pxMode=True, size=DISC_PX)
        for z, item in enumerate((self.cloud, self.discs, self.labels, self.path, self.ring)):
            item.setZValue(z)  # the path on top of the tokens: it is what the view is about
            self.plot.addItem(item)
        for item in (self.cloud, self.path, self.ring, self.labels):
            _disable_mouse(item)
        self.discs.sigClicked.connect(lambda _it, pts, _ev: pts and on_click(int(pts[0].data())))
        self.step_labels: list[pg.TextItem] = []
        self.message = self.message_item()
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        super().apply_theme(theme)
        self.path.setPen(_pen(theme.foreground, 2.5))
        self.path.setSymbolBrush(pg.mkBrush(theme.foreground))
        self.path.setSymbolPen(pg.mkPen(None))
        self.ring.setPen(_pen(th.OKABE_ITO["vermillion"] if theme.name == "light" else theme.accent, 4))
        self.message.setColor(QColor(theme.foreground))
        for t in self.step_labels:
            t.setColor(QColor(theme.foreground))
            t.fill = pg.mkBrush(_faded(theme.background, 190))
            t.update()

    def set_cloud(self, coords: np.ndarray, classes: np.ndarray) -> None:
        self.cloud.setData(pos=coords, brush=[self.glyphs.faded_brushes[c] for c in classes],
                           pen=self.glyphs.no_pen)

    def ensure_steps(self, n: int) -> None:
        """TextItems for the path's steps (tok, +pos, block outputs), made once per model depth."""
        while len(self.step_labels) < n:
            k = len(self.step_labels)  # alternate sides, so steps close together stay legible
            t = pg.TextItem("", color=self.theme.foreground, anchor=(-0.15, 1.0) if k % 2 else (1.15, 0.0),
                            fill=pg.mkBrush(_faded(self.theme.background, 190)))
            t.setFont(font(th.FONT_PT, bold=True))
            t.setZValue(8)
            _disable_mouse(t)
            self.plot.addItem(t, ignoreBounds=True)
            self.step_labels.append(t)

    def set_points(self, coords: np.ndarray, tokens, classes, positions: np.ndarray) -> None:
        if len(coords):
            self.discs.setData(pos=coords, data=positions, brush=[self.glyphs.class_brushes[c] for c in classes],
                               pen=self.glyphs.disc_pen)
            self.labels.setData(pos=coords, symbol=self.glyphs.paths(tokens),
                                brush=[self.glyphs.text_brushes[c] for c in classes], pen=self.glyphs.no_pen)
        else:
            self.discs.setData([], [])
            self.labels.setData([], [])

    def set_path(self, path: np.ndarray, names: list[str], current: int | None) -> None:
        """The selected token's trajectory ``path`` (S, 2); ``current`` = the step shown as points."""
        self.ensure_steps(len(names))
        if len(path):
            self.path.setData(path[:, 0], path[:, 1])
        else:
            self.path.setData([], [])
        for k, t in enumerate(self.step_labels):
            if k < len(names) and len(path):
                t.setText(names[k])
                t.setPos(*path[k])
                t.setVisible(True)
            else:
                t.setVisible(False)
        self.ring.setData(pos=path[[current]] if current is not None and len(path) else np.zeros((0, 2)),
                          size=DISC_PX + 14)

    def set_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if text:
            vr = self.plot.viewRect()
            self.message.setPos(vr.center())


class DimensionsView(_PlotView):
    """Cumulative explained variance of the token and position tables against components kept."""

    def __init__(self, theme: th.Theme) -> None:
        super().__init__(theme)
        legend = self.plot.addLegend(offset=(-10, -10), labelTextSize=f"{th.FONT_PT}pt")
        self._legend_hider = LegendAutoHide(self.widget, legend, 420, 300)
        self.tok = self.plot.plot(name="token embeddings")
        self.pos = self.plot.plot(name="position embeddings")
        self.marks = PassiveScatter(pxMode=True, size=11, symbol="o")
        self.plot.addItem(self.marks)
        _disable_mouse(self.marks)
        self.levels = [pg.InfiniteLine(pos=v, angle=0, movable=False,
                                       label=f"{int(v)}%", labelOpts=dict(position=0.04))
                       for v in (90.0, 99.0)]
        for ln in self.levels:
            self.plot.addItem(ln)
        self.mark_text = [pg.TextItem("", anchor=(-0.08, -0.1)) for _ in range(2)]
        for t in self.mark_text:
            t.setFont(font(th.FONT_PT, bold=True))
            _disable_mouse(t)
            self.plot.addItem(t, ignoreBounds=True)
        self.plot.setYRange(0, 106, padding=0)
        self.plot.enableAutoRange(axis="y", enable=False)
        self.apply_theme(theme)

    def apply_theme(self, theme: th.Theme) -> None:
        super().apply_theme(theme)
        self.tok.setPen(_pen(th.OKABE_ITO["blue"] if theme.name == "light" else th.OKABE_ITO["sky"], 3))
        self.pos.setPen(_pen(th.OKABE_ITO["orange"], 2.5, Qt.PenStyle.DashLine))
        self.marks.setBrush(pg.mkBrush(th.OKABE_ITO["vermillion"]))
        self.marks.setPen(pg.mkPen(None))
        for ln in self.levels:
            ln.setPen(_pen(theme.grid, 1.5, Qt.PenStyle.DotLine))
            ln.label.setColor(QColor(theme.foreground))
            ln.label.setFont(font(th.FONT_PT))
        for t in self.mark_text:
            t.setColor(QColor(theme.foreground))

    def set_curves(self, tok_cum: np.ndarray, pos_cum: np.ndarray | None, k90: int, k99: int) -> None:
        x = np.arange(1, len(tok_cum) + 1)
        self.tok.setData(x, 100 * tok_cum)
        if pos_cum is not None and len(pos_cum):
            self.pos.setData(np.arange(1, len(pos_cum) + 1), 100 * pos_cum)
        else:
            self.pos.setData([], [])
        pts = [(k, 100 * tok_cum[k - 1]) for k in (k90, k99) if 0 < k <= len(tok_cum)]
        self.marks.setData(pos=np.asarray(pts) if pts else np.zeros((0, 2)))
        for t, (k, label) in zip(self.mark_text, ((k90, "90%"), (k99, "99%"))):
            if 0 < k <= len(tok_cum):
                t.setText(f"{k} dims → {label}")
                t.setPos(k, 100 * tok_cum[k - 1])
                t.setVisible(True)
            else:
                t.setVisible(False)
        self.plot.setXRange(0, max(len(tok_cum), len(pos_cum) if pos_cum is not None else 0) + 1, padding=0.02)
