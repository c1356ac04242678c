"""Drawing helpers shared by the attention and logits panels.

* ``palette_theme(widget)``: the light or dark ``Theme`` that matches the application palette;
* ``apply_plot_theme(glw, theme)``: background, axis pens and fonts of a pyqtgraph layout;
* ``cividis_lut()``: the colour table of every attention heatmap;
* ``LabelAxis``: an axis whose ticks are text labels (prompt characters, layer names), thinned to
  fit so labels never overlap, and all shown once the user zooms in;
* ``MaskItem``: a staircase polygon over the causal upper triangle, filled grey and hatched in
  screen space so the mask reads as "not allowed", never as a weight of zero;
* ``text_colour_for(rgb)``: black or white text, whichever reads on a given cell colour.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QToolTip, QWidget

from .. import theme as th

_NICE_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000)


def palette_theme(widget: QWidget | None = None) -> th.Theme:
    """DARK when the palette's window colour is dark, LIGHT otherwise."""
    pal = widget.palette() if widget is not None else QPalette()
    return th.DARK if pal.color(QPalette.ColorRole.Window).lightness() < 128 else th.LIGHT


def tick_font(pt: int = th.LABEL_PT) -> QFont:
    f = QFont()
    f.setPointSize(pt)
    return f


def mono_font(pt: int = th.FONT_PT) -> QFont:
    f = QFont("DejaVu Sans Mono")
    f.setStyleHint(QFont.StyleHint.Monospace)
    f.setPointSize(pt)
    return f


def steady_axes(root: QWidget) -> int:
    """Turn off pyqtgraph's automatic SI prefix on every axis in ``root``'s plots; return how many.

    With it on, each change of a view's range re-renders the axis label's HTML and resizes the
    axis, which lays the plot out again and repaints it a second time; on the per-keystroke path
    that doubled the cost of drawing the plots. The axes here show token labels, probabilities and
    activations, which read best as plain numbers anyway."""
    n = 0
    for gv in root.findChildren(pg.GraphicsView):
        scene = gv.scene()
        if scene is None:
            continue
        for item in scene.items():
            if isinstance(item, pg.AxisItem) and item.autoSIPrefix:
                item.enableAutoSIPrefix(False)
                n += 1
    return n


def apply_plot_theme(glw: pg.GraphicsLayoutWidget, plots, theme: th.Theme) -> None:
    """Colour a layout's background and the axes of ``plots`` (PlotItems) for ``theme``."""
    glw.setBackground(theme.background)
    for plot in plots:
        for name in ("left", "bottom", "top", "right"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(theme.foreground))
            axis.setTextPen(pg.mkPen(theme.foreground))
            axis.setStyle(tickFont=tick_font())
            if axis.label is not None:
                axis.label.setFont(tick_font())
        if plot.titleLabel is not None:
            plot.titleLabel.item.setDefaultTextColor(QColor(theme.foreground))


def cividis_lut(n: int = 256) -> np.ndarray:
    """The cividis colour table, (n, 3) uint8."""
    return pg.colormap.get(th.HEATMAP_CMAP).getLookupTable(nPts=n, alpha=False)


def cividis_rgb(values) -> np.ndarray:
    """cividis colours of values in [0, 1], (..., 3) uint8."""
    lut = cividis_lut()
    idx = np.clip(np.rint(np.nan_to_num(np.asarray(values, dtype=np.float64)) * 255), 0, 255).astype(np.intp)
    return lut[idx]


def text_colour_for(rgb) -> str:
    """'#000000' or '#FFFFFF', whichever contrasts more with the colour ``rgb`` (0..255 triplet)."""
    r, g, b = (float(v) for v in rgb[:3])
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 140 else "#FFFFFF"


def nice_step(raw: float) -> int:
    for s in _NICE_STEPS:
        if s >= raw:
            return s
    return int(10 ** math.ceil(math.log10(max(raw, 1.0))))


class CellPicking:
    """Mouse handling shared by the cell-grid views (the head grid, the logit lens): a left click on
    a cell emits ``cellClicked(*cell)``, hovering shows ``describe(*cell)`` as a tooltip. The view
    provides ``cell_at(scene_pos)``, ``describe(...)`` and the ``cellClicked`` signal, and connects
    its scene's ``sigMouseClicked`` / ``sigMouseMoved`` to these two methods."""

    def _on_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(ev.scenePos())
        if cell is not None:
            ev.accept()
            self.cellClicked.emit(*cell)

    def _on_moved(self, scene_pos) -> None:
        cell = self.cell_at(scene_pos)
        if cell is None:
            return
        p = self.mapFromScene(scene_pos)
        QToolTip.showText(self.mapToGlobal(QPoint(int(p.x()), int(p.y()))), self.describe(*cell), self)


class LabelAxis(pg.AxisItem):
    """An axis labelling integer cells ``[i, i+1)`` with ``labels[i]`` at ``i + 0.5``.

    Labels are thinned to a 1/2/5/10… step so they never overlap at the current zoom; zooming in
    brings every label back.
    """

    def __init__(self, orientation: str, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._labels: list[str] = []
        self._extent_cache: tuple[int, float] | None = None
        self.setStyle(tickFont=tick_font(), autoExpandTextSpace=True)

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def set_labels(self, labels) -> None:
        labels = [str(s) for s in labels]
        if labels == self._labels:
            return
        self._labels = labels
        self._extent_cache = None
        self.picture = None
        self.update()

    def _label_extent(self) -> float:
        """Pixels one label needs along the axis, with a little air."""
        key = len(self._labels)
        if self._extent_cache is not None and self._extent_cache[0] == key:
            return self._extent_cache[1]
        fm = QFontMetrics(self.style.get("tickFont") or tick_font())
        if self.orientation in ("left", "right"):
            extent = fm.height() * 1.05
        else:
            widest = max((fm.horizontalAdvance(s) for s in self._labels[:512]), default=8)
            extent = widest + 6
        self._extent_cache = (key, float(extent))
        return float(extent)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph API)
        n = len(self._labels)
        lo_v, hi_v = min(minVal, maxVal), max(minVal, maxVal)
        if n == 0 or size <= 0 or hi_v <= lo_v:
            return []
        lo = max(0, int(math.floor(lo_v)))
        hi = min(n, int(math.ceil(hi_v)))
        if hi <= lo:
            return []
        px_per_cell = size / (hi_v - lo_v)
        step = nice_step(self._label_extent() / max(px_per_cell, 1e-9))
        first = ((lo + step - 1) // step) * step
        major = [i + 0.5 for i in range(first, hi, step)]
        return [(float(step), major)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        n = len(self._labels)
        out = []
        for v in values:
            i = int(math.floor(v))
            out.append(self._labels[i] if 0 <= i < n else "")
        return out


class MaskItem(pg.GraphicsObject):
    """The causal mask of a T×T row-major heatmap: every cell (q, k) with k > q.

    Drawn as one staircase polygon, filled with ``MASK_COLOR`` and hatched with lines a fixed
    number of screen pixels apart (the hatch is drawn in device space, so it stays visible at any
    zoom and in exports).
    """

    def __init__(self) -> None:
        super().__init__()
        self._T = 0
        self._poly = QPolygonF()
        self.fill = QColor(th.MASK_COLOR)
        self.hatch = QColor("#7A7A7A")

    @property
    def T(self) -> int:
        return self._T

    def set_size(self, T: int) -> None:
        if T == self._T:
            return
        self.prepareGeometryChange()
        self._T = T
        pts: list[QPointF] = []
        if T >= 2:
            pts = [QPointF(1, 0), QPointF(T, 0), QPointF(T, T - 1)]
            for q in range(T - 2, -1, -1):
                pts.append(QPointF(q + 1, q + 1))
                pts.append(QPointF(q + 1, q))
        self._poly = QPolygonF(pts)
        self.update()

    def contains_cell(self, q: int, k: int) -> bool:
        """True when cell (query q, key k) lies under the mask."""
        return self._poly.containsPoint(QPointF(k + 0.5, q + 0.5), Qt.FillRule.OddEvenFill)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self._poly.boundingRect() if self._T >= 2 else QRectF()

    def paint(self, p: QPainter, *args) -> None:
        if self._T < 2:
            return
        device_poly = p.transform().map(self._poly)
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(self.fill))
        p.drawPolygon(device_poly)
        p.setBrush(QBrush(self.hatch, Qt.BrushStyle.BDiagPattern))
        p.drawPolygon(device_poly)
        p.restore()


def outline_pen(theme: th.Theme, width: float = 2.5) -> QPen:
    pen = pg.mkPen(theme.accent if theme.name == "dark" else th.OKABE_ITO["vermillion"], width=width)
    pen.setCosmetic(True)
    return pen
