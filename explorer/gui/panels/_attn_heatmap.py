"""The T×T attention heatmap of one head (or the mean over heads) of one block.

Queries run down (row q is the position that attends), keys run across (column k is the position
attended to). Both axes are labelled with the prompt's characters, whitespace made visible. The
causal upper triangle (k > q) is NaN in the image, so it is transparent there, and a ``MaskItem``
paints it grey and hatched. The colour bar is fixed to 0..1 for weights; for pre-softmax scores it
spans the causal part's range, which the panel states.

Every item is built once; ``show(...)`` only calls ``setImage`` / ``set_labels`` / ``setRect``.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

from .. import theme as th
from ._attn_style import LabelAxis, MaskItem, apply_plot_theme, outline_pen


class AttentionHeatmap(QWidget):
    """Heatmap widget. ``rowClicked(q)`` is emitted when the user clicks row ``q``."""

    rowClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setMinimumSize(200, 180)
        self.glw.setToolTip("Click a row to make that position the query everywhere. Scroll to zoom, "
                           "drag to pan, double-click to fit the whole pattern again.")
        self.left = LabelAxis("left")
        self.bottom = LabelAxis("bottom")
        self.plot = self.glw.addPlot(row=0, col=0, axisItems={"left": self.left, "bottom": self.bottom})
        self.plot.setLabel("left", "query (attends) ↓")
        self.plot.setLabel("bottom", "key (attended to) →")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.vb = self.plot.getViewBox()
        self.vb.invertY(True)
        self.vb.setAspectLocked(True)
        self.vb.setDefaultPadding(0.0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(0)
        self.mask = MaskItem()
        self.mask.setZValue(1)
        self.row_outline = pg.QtWidgets.QGraphicsRectItem()
        self.row_outline.setZValue(2)
        self.row_outline.setBrush(Qt.BrushStyle.NoBrush)
        self.plot.addItem(self.image)
        self.plot.addItem(self.mask)
        self.plot.addItem(self.row_outline)
        self._bar: tuple = ()  # (levels, label) the colour bar shows
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=th.HEATMAP_CMAP, interactive=False,
                                        colorMapMenu=False, width=18)
        self.colorbar.setImageItem(self.image)
        self.glw.addItem(self.colorbar, row=0, col=1)
        self.readout = QLabel("Hover over a cell to read its weight and score.")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.glw, 1)
        layout.addWidget(self.readout, 0)

        self._weights = np.zeros((0, 0), np.float32)  # (T, T) shown weights (mean if averaging)
        self._scores = np.zeros((0, 0), np.float32)  # (T, T) raw scores (mean if averaging)
        self._labels: list[str] = []
        self._positions: np.ndarray = np.zeros(0, np.int64)
        self._T = -1
        self._zoomed = False
        self._fitting = False
        self.vb.sigResized.connect(self._on_resized)
        self.vb.sigRangeChangedManually.connect(self._on_range_changed_manually)
        self.glw.scene().sigMouseMoved.connect(self._on_moved)
        self.glw.scene().sigMouseClicked.connect(self._on_clicked)
        self.apply_theme(th.LIGHT)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def T(self) -> int:
        return max(self._T, 0)

    def apply_theme(self, theme: th.Theme) -> None:
        apply_plot_theme(self.glw, [self.plot], theme)
        for name in ("right", "left", "top", "bottom"):
            ax = self.colorbar.getAxis(name)
            ax.setPen(pg.mkPen(theme.foreground))
            ax.setTextPen(pg.mkPen(theme.foreground))
        self.row_outline.setPen(outline_pen(theme))

    def show(self, image: np.ndarray, weights: np.ndarray, scores: np.ndarray, labels: list[str],
             levels: tuple[float, float], bar_label: str, query: int | None) -> None:
        """Display ``image`` (T, T) with NaN above the diagonal; ``weights``/``scores`` feed the hover."""
        T = image.shape[0]
        self._weights, self._scores = weights, scores
        self._labels = list(labels)
        if T == 0:
            self.image.clear()
            self.image.setVisible(False)
            self.mask.set_size(0)
            self.row_outline.setVisible(False)
            self.left.set_labels([])
            self.bottom.set_labels([])
            self.readout.setText("Empty prompt: type something to see where each position looks.")
            self._T = 0
            return
        self.image.setVisible(True)
        self.image.setImage(image, autoLevels=False, levels=levels)
        self.image.setRect(QRectF(0, 0, T, T))
        if (tuple(levels), bar_label) != self._bar:  # unchanged on most keystrokes: keep the axis as drawn
            self._bar = (tuple(levels), bar_label)
            self.colorbar.setLevels(levels)
            self.colorbar.axis.setLabel(bar_label)
        self.mask.set_size(T)
        self.left.set_labels(labels)
        self.bottom.set_labels(labels)
        if T != self._T:
            self.vb.setLimits(minXRange=min(T, 4), minYRange=min(T, 4))
            self._T = T
            self._zoomed = False
            self.fit()
        self.set_query(query)

    def fit(self) -> None:
        """Show the whole T×T square, centred, with room for the first and last labels."""
        T = self.T
        w, h = self.vb.width(), self.vb.height()
        if T == 0 or w <= 0 or h <= 0:
            return
        pad = max(0.6, 0.03 * T)
        side = T + 2 * pad
        if w >= h:
            span = side * w / h
            x, y = (T / 2 - span / 2, T / 2 + span / 2), (-pad, T + pad)
        else:
            span = side * h / w
            x, y = (-pad, T + pad), (T / 2 - span / 2, T / 2 + span / 2)
        self._fitting = True
        self.vb.setRange(xRange=x, yRange=y, padding=0.0)
        self._fitting = False

    def _on_resized(self, *_):
        if not self._zoomed:
            self.fit()

    def _on_range_changed_manually(self, *_):
        if not self._fitting:
            self._zoomed = True

    def set_query(self, q: int | None) -> None:
        if q is None or self.T == 0:
            self.row_outline.setVisible(False)
            return
        self.row_outline.setRect(QRectF(0, q, self.T, 1))
        self.row_outline.setVisible(True)

    def displayed_image(self) -> np.ndarray | None:
        """The array currently shown (T, T), or None for an empty prompt."""
        return None if not self.image.isVisible() else self.image.image

    # ---- mouse ---------------------------------------------------------------------------------
    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        if self.T == 0 or not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.vb.mapSceneToView(scene_pos)
        q, k = int(math.floor(p.y())), int(math.floor(p.x()))
        if 0 <= q < self.T and 0 <= k < self.T:
            return q, k
        return None

    def describe(self, q: int, k: int) -> str:
        lab = self._labels
        if k > q:
            return (f"query {q} '{lab[q]}' → key {k} '{lab[k]}': masked (a position cannot look at "
                    f"later characters)")
        return (f"query {q} '{lab[q]}' → key {k} '{lab[k]}' · weight {self._weights[q, k]:.4f} · "
                f"score {self._scores[q, k]:+.3f}")

    def _on_moved(self, scene_pos) -> None:
        cell = self.cell_at(scene_pos)
        if cell is None:
            return
        text = self.describe(*cell)
        self.readout.setText(text)
        view_pt = self.glw.mapFromScene(scene_pos)
        QToolTip.showText(self.glw.mapToGlobal(QPoint(int(view_pt.x()), int(view_pt.y()))), text, self.glw)

    def _on_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        if ev.double():
            self._zoomed = False
            self.fit()
            ev.accept()
            return
        cell = self.cell_at(ev.scenePos())
        if cell is not None:
            ev.accept()
            self.rowClicked.emit(cell[0])
