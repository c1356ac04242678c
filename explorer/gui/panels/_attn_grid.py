"""The model view: every layer × head attention pattern as a small heatmap, all in one image.

The L × H patterns are laid side by side in one uint8 mosaic drawn by a single ``ImageItem``
(colour indices into ``grid_lut``: 0..253 the weight, 254 the gap between cells, 255 the causal
mask), and one ``GridOverlay`` item draws every cell's border, the selection outline and the
entropy numbers in a single paint. A new trace is one ``setImage``; the axes (``block i`` /
``head h``) never move, because each cell is a unit square whatever the prompt length: every
pattern is resampled (nearest neighbour) to ``CELL_PX`` pixels a side, or T if longer.

Clicking a cell emits ``cellClicked(layer, head)``; hovering tells the cell's mean entropy.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

from .. import theme as th
from ._attn_style import CellPicking, cividis_lut, outline_pen, tick_font

CELL_PX = 128  # pixels a side of one cell's image (T is resampled to this; longer prompts keep T)
GAP = 0.08  # the gap between two cells, as a fraction of a cell
GAP_INDEX = 254  # colour index of the gaps (the theme's background)
MASK_INDEX = 255  # colour index of the causal mask


def grid_lut(background: str) -> np.ndarray:
    """(256, 3) uint8: 254 cividis steps for weights 0..1 (indices 0..253), ``background`` at 254 (the
    gaps between cells) and ``MASK_COLOR`` at 255 (the causal mask)."""
    lut = np.empty((256, 3), np.uint8)
    lut[:GAP_INDEX] = cividis_lut(GAP_INDEX)
    for i, colour in ((GAP_INDEX, background), (MASK_INDEX, th.MASK_COLOR)):
        c = QColor(colour)
        lut[i] = (c.red(), c.green(), c.blue())
    return lut


def cell_pixels(T: int) -> tuple[int, int]:
    """(pixels a side of one cell, pixels of one gap) in the mosaic for a T-token prompt."""
    side = max(CELL_PX, T)
    return side, max(1, int(round(GAP * side)))


def mosaic(indices: np.ndarray) -> np.ndarray:
    """Colour indices (L, H, T, T) → one (L·S + (L−1)·G, H·S + (H−1)·G) uint8 image, cell (l, h) at
    rows l·(S+G)…, columns h·(S+G)…, each T×T pattern resampled to S×S, gaps set to ``GAP_INDEX``."""
    L, H, T = indices.shape[0], indices.shape[1], indices.shape[-1]
    S, G = cell_pixels(T)
    pick = (np.arange(S) * T) // S  # nearest source row/column of each mosaic pixel
    out = np.full((L, S + G, H, S + G), GAP_INDEX, np.uint8)
    rows = np.take(indices, pick, axis=2)  # (L, H, S, T); np.take is several times faster than [:, :, pick]
    out[:, :S, :, :S] = np.take(rows, pick, axis=3).transpose(0, 2, 1, 3)
    return out.reshape(L * (S + G), H * (S + G))[: L * (S + G) - G, : H * (S + G) - G]


class GridOverlay(pg.GraphicsObject):
    """Cell borders, the selection outline and the entropy numbers, drawn in one paint."""

    def __init__(self, grid: "HeadGrid") -> None:
        super().__init__()
        self.grid = grid
        self._rect = QRectF()

    def set_extent(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(rect)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self._rect

    def paint(self, p: QPainter, *args) -> None:
        g = self.grid
        L, H = g.shape
        if not L or not H:
            return
        tr = p.transform()
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        theme = g.theme
        thin = pg.mkPen(theme.grid, width=1)
        boxes = {(layer, h): tr.mapRect(g.cell_view_rect(layer, h)) for layer in range(L) for h in range(H)}
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(thin)
        for box in boxes.values():
            p.drawRect(box)
        if g.show_entropy and g.entropy_texts:
            font = QFont(g.font_for_numbers)
            fm = QFontMetricsF(font)
            p.setFont(font)
            for (layer, h), box in boxes.items():
                text = g.entropy_text(layer, h)
                if not text:
                    continue
                w, hh = fm.horizontalAdvance(text) + 6, fm.height() + 2
                if w > box.width() - 2 or hh > box.height() - 2:
                    continue
                label = QRectF(box.right() - w - 1, box.bottom() - hh - 1, w, hh)
                p.fillRect(label, QColor(0, 0, 0, 150))
                p.setPen(QColor("#FFFFFF"))
                p.drawText(label, Qt.AlignmentFlag.AlignCenter, text)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(outline_pen(theme, width=3.5))
        for cell in g.outlined():
            p.drawRect(boxes[cell])
        p.restore()


class HeadGrid(CellPicking, pg.GraphicsLayoutWidget):
    """Grid of n_layer rows × n_head columns. Rows are blocks, columns heads."""

    cellClicked = Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 150)
        self.setToolTip("Every block × head. Click a cell to show it in the heatmap.")
        self.shape: tuple[int, int] = (0, 0)
        self.indices = np.zeros((0, 0, 0, 0), np.uint8)  # (L, H, T, T) colour indices shown
        self.entropies = np.zeros((0, 0))
        self.entropy_texts: list[list[str]] = []
        self.selected: tuple[int, int | None] = (0, 0)
        self.show_entropy = True
        self.theme = th.LIGHT
        self.font_for_numbers = QFont()
        self.font_for_numbers.setPointSize(th.FONT_PT - 1)
        self._uniform_entropy = 0.0
        self._gap = GAP  # gap in cell units for the current mosaic
        self.left = pg.AxisItem("left")
        self.top = pg.AxisItem("top")
        for axis in (self.left, self.top):
            axis.setStyle(tickFont=tick_font(), tickLength=0)
        self.plot = self.addPlot(row=0, col=0, axisItems={"left": self.left, "top": self.top})
        self.plot.showAxis("top")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.vb = self.plot.getViewBox()
        self.vb.setMouseEnabled(False, False)
        self.vb.invertY(True)
        self.vb.setDefaultPadding(0.0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.overlay = GridOverlay(self)
        self.overlay.setZValue(5)
        self.vb.addItem(self.image)
        self.vb.addItem(self.overlay)
        self._lut = grid_lut(self.theme.background)
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.scene().sigMouseMoved.connect(self._on_moved)

    # ---- geometry (cell units: cell (l, h) is the unit square at (h·(1+gap), l·(1+gap))) ---------
    def cell_view_rect(self, layer: int, head: int) -> QRectF:
        step = 1.0 + self._gap
        return QRectF(head * step, layer * step, 1.0, 1.0)

    def cell_rect(self, layer: int, head: int) -> QRectF:
        """Scene rectangle of cell (layer, head)."""
        return self.vb.mapViewToScene(self.cell_view_rect(layer, head)).boundingRect()

    def _extent(self) -> QRectF:
        L, H = self.shape
        return QRectF(0, 0, H + (H - 1) * self._gap, L + (L - 1) * self._gap)

    def _place(self) -> None:
        """Range, ticks and overlay for the current shape and gap (changes only with them)."""
        L, H = self.shape
        step = 1.0 + self._gap
        self.left.setTicks([[(layer * step + 0.5, f"block {layer}") for layer in range(L)]])
        self.top.setTicks([[(h * step + 0.5, f"head {h}") for h in range(H)]])
        ext = self._extent()
        self.vb.setRange(xRange=(ext.left(), ext.right()), yRange=(ext.top(), ext.bottom()), padding=0.02)
        self.overlay.set_extent(ext)

    # ---- construction (once per model shape) ---------------------------------------------------
    def build(self, n_layer: int, n_head: int) -> None:
        if (n_layer, n_head) == self.shape:
            return
        self.shape = (n_layer, n_head)
        self.indices = np.zeros((n_layer, n_head, 0, 0), np.uint8)
        self.entropies = np.zeros((n_layer, n_head))
        self.entropy_texts = [["" for _ in range(n_head)] for _ in range(n_layer)]
        self._gap = GAP
        self.image.clear()
        self._place()
        self.apply_theme(self.theme)

    # ---- updates (per trace) -------------------------------------------------------------------
    def update_cells(self, indices: np.ndarray, entropies: np.ndarray, uniform_entropy: float) -> None:
        """``indices`` (L, H, T, T) uint8 (0..253 weight, 255 masked), ``entropies`` (L, H) mean per-row entropy."""
        L, H = self.shape
        T = indices.shape[-1] if indices.ndim == 4 else 0
        self.indices = indices
        self.entropies = np.asarray(entropies, dtype=np.float64)
        self._uniform_entropy = uniform_entropy
        if T == 0:
            self.image.clear()
            self.entropy_texts = [["" for _ in range(H)] for _ in range(L)]
            self.overlay.update()
            return
        S, G = cell_pixels(T)
        gap = G / S
        if abs(gap - self._gap) > 1e-9:  # only for prompts longer than CELL_PX
            self._gap = gap
            self._place()
        img = mosaic(indices)
        self.image.setImage(img, autoLevels=False, levels=(0, 255), lut=self._lut)
        self.image.setRect(self._extent())
        self.entropy_texts = [[f"{self.entropies[layer, h]:.2f}" for h in range(H)] for layer in range(L)]
        self.overlay.update()

    def entropy_text(self, layer: int, head: int) -> str:
        """The number drawn on cell (layer, head), '' when hidden or empty."""
        return self.entropy_texts[layer][head] if self.show_entropy else ""

    def set_show_entropy(self, on: bool) -> None:
        self.show_entropy = bool(on)
        self.overlay.update()

    def set_selected(self, layer: int, head: int | None) -> None:
        """Outline cell (layer, head); ``head=None`` outlines the whole row (mean over heads)."""
        if (layer, head) != self.selected:
            self.selected = (layer, head)
            self.overlay.update()

    def outlined(self) -> list[tuple[int, int]]:
        """The cells drawn with the selection outline."""
        L, H = self.shape
        sel_l, sel_h = self.selected
        return [(layer, h) for layer in range(L) for h in range(H)
                if layer == sel_l and (sel_h is None or h == sel_h)]

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        self.setBackground(theme.background)
        for axis in (self.left, self.top):
            axis.setPen(QColor(0, 0, 0, 0))  # labels only: no axis line or tick marks along the grid
            axis.setTickPen(QColor(0, 0, 0, 0))
            axis.setTextPen(theme.foreground)
        self._lut = grid_lut(theme.background)
        if self.image.image is not None:
            self.image.setLookupTable(self._lut)
        self.overlay.update()

    # ---- mouse ---------------------------------------------------------------------------------
    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        L, H = self.shape
        if not L or not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.vb.mapSceneToView(scene_pos)
        step = 1.0 + self._gap
        h, layer = int(p.x() // step), int(p.y() // step)
        if 0 <= layer < L and 0 <= h < H and self.cell_view_rect(layer, h).contains(QPointF(p.x(), p.y())):
            return layer, h
        return None

    def describe(self, layer: int, h: int) -> str:
        if not self.entropies.size:
            return f"block {layer} · head {h}"
        return (f"block {layer} · head {h}: mean entropy of a query row {self.entropies[layer, h]:.3f} nats "
                f"(uniform attention would give {self._uniform_entropy:.3f}; 0 = each row looks at one key)")
