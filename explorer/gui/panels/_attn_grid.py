"""The model view: every layer × head attention pattern as a small heatmap.

One ``ViewBox`` + one ``ImageItem`` + one entropy ``TextItem`` per cell, built once per model shape
(``build(n_layer, n_head)``). A new trace only calls ``setImage`` on each cell with a uint8 image
whose index 255 is the causal mask's grey (``masked_lut``), so a 6×6 grid of 256×256 patterns
redraws without per-cell widgets or float colour mapping. The selected cell is outlined; clicking
a cell emits ``cellClicked(layer, head)``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtGui import QColor, QFont

from .. import theme as th
from ._attn_style import CellPicking, masked_lut, outline_pen

_LUT = masked_lut()


class HeadGrid(CellPicking, pg.GraphicsLayoutWidget):
    """Grid of n_layer rows × n_head columns. Rows are blocks, columns heads."""

    cellClicked = Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 150)
        self.setToolTip("Every block × head. Click a cell to show it in the heatmap.")
        self.shape: tuple[int, int] = (0, 0)
        self.views: list[list[pg.ViewBox]] = []
        self.images: list[list[pg.ImageItem]] = []
        self.entropy_items: list[list[pg.TextItem]] = []
        self.entropies = np.zeros((0, 0))
        self.row_labels: list[pg.LabelItem] = []
        self.col_labels: list[pg.LabelItem] = []
        self._selected: tuple[int, int | None] = (0, 0)
        self._show_entropy = True
        self._theme = th.LIGHT
        self._uniform_entropy = 0.0
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.scene().sigMouseMoved.connect(self._on_moved)

    # ---- construction (once per model shape) ---------------------------------------------------
    def build(self, n_layer: int, n_head: int) -> None:
        if (n_layer, n_head) == self.shape:
            return
        self.clear()
        self.views, self.images, self.entropy_items = [], [], []
        self.row_labels, self.col_labels = [], []
        self.ci.layout.setSpacing(3)
        font = QFont()
        font.setPointSize(th.FONT_PT - 1)
        self.addLabel("", row=0, col=0)
        for h in range(n_head):
            lab = self.addLabel(f"head {h}", row=0, col=h + 1, size=f"{th.FONT_PT - 1}pt")
            self.col_labels.append(lab)
        for layer in range(n_layer):
            lab = self.addLabel(f"block {layer}", row=layer + 1, col=0, angle=-90, size=f"{th.FONT_PT - 1}pt")
            self.row_labels.append(lab)
            vrow, irow, erow = [], [], []
            for h in range(n_head):
                vb = self.addViewBox(row=layer + 1, col=h + 1, lockAspect=False, enableMouse=False,
                                     enableMenu=False, invertY=True, defaultPadding=0.0)
                vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.0)
                img = pg.ImageItem(axisOrder="row-major")
                img.setLookupTable(_LUT)
                vb.addItem(img)
                txt = pg.TextItem("", anchor=(1, 1), color="#FFFFFF", fill=QColor(0, 0, 0, 150))
                txt.setFont(font)
                txt.setPos(1.0, 1.0)
                txt.setZValue(5)
                vb.addItem(txt)
                vrow.append(vb)
                irow.append(img)
                erow.append(txt)
            self.views.append(vrow)
            self.images.append(irow)
            self.entropy_items.append(erow)
        self.shape = (n_layer, n_head)
        self.entropies = np.zeros((n_layer, n_head))
        self.apply_theme(self._theme)

    # ---- updates (per trace) -------------------------------------------------------------------
    def update_cells(self, indices: np.ndarray, entropies: np.ndarray, uniform_entropy: float) -> None:
        """``indices`` (L, H, T, T) uint8 (255 = masked), ``entropies`` (L, H) mean per-row entropy."""
        L, H = self.shape
        T = indices.shape[-1] if indices.ndim == 4 else 0
        self.entropies = np.asarray(entropies, dtype=np.float64)
        self._uniform_entropy = uniform_entropy
        rect = QRectF(0, 0, 1, 1)
        for layer in range(L):
            for h in range(H):
                img = self.images[layer][h]
                if T == 0:
                    img.clear()
                    self.entropy_items[layer][h].setText("")
                    continue
                img.setImage(indices[layer, h], autoLevels=False, levels=(0, 255), lut=_LUT)
                img.setRect(rect)
                self.entropy_items[layer][h].setText(f"{self.entropies[layer, h]:.2f}")
        self._refresh_entropy_visibility()

    def set_show_entropy(self, on: bool) -> None:
        self._show_entropy = bool(on)
        self._refresh_entropy_visibility()

    def _refresh_entropy_visibility(self) -> None:
        for row in self.entropy_items:
            for t in row:
                t.setVisible(self._show_entropy and bool(t.toPlainText()))

    def set_selected(self, layer: int, head: int | None) -> None:
        """Outline cell (layer, head); ``head=None`` outlines the whole row (mean over heads)."""
        self._selected = (layer, head)
        self._refresh_borders()

    def apply_theme(self, theme: th.Theme) -> None:
        self._theme = theme
        self.setBackground(theme.background)
        for lab in self.row_labels + self.col_labels:
            lab.setText(lab.text, color=theme.foreground)
        self._refresh_borders()

    def _refresh_borders(self) -> None:
        sel_l, sel_h = self._selected
        thin = pg.mkPen(self._theme.grid, width=1)
        thick = outline_pen(self._theme, width=3.5)
        for layer, row in enumerate(self.views):
            for h, vb in enumerate(row):
                chosen = layer == sel_l and (sel_h is None or h == sel_h)
                vb.setBorder(thick if chosen else thin)

    # ---- mouse ---------------------------------------------------------------------------------
    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        for layer, row in enumerate(self.views):
            for h, vb in enumerate(row):
                if vb.sceneBoundingRect().contains(scene_pos):
                    return layer, h
        return None

    def describe(self, layer: int, h: int) -> str:
        if not self.entropies.size:
            return f"block {layer} · head {h}"
        return (f"block {layer} · head {h}: mean entropy of a query row {self.entropies[layer, h]:.3f} nats "
                f"(uniform attention would give {self._uniform_entropy:.3f}; 0 = each row looks at one key)")

