"""The logit lens heatmap: depth (embedding output, block 1..L output) × position.

Cell (d, t) is ``lm_head(ln_f(resid_d[t]))`` read as a next-character guess: its colour is the
probability of the top character, and the character itself is written in the cell once the cells
are large enough to read (``LensTextItem`` draws them all in one paint, in screen space). A top
character that equals the prompt's true next character is drawn bold and underlined. Rows run
top to bottom from the embeddings to the last block, so the prediction forms as you read down.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter

from .. import theme as th
from ._attn_style import CellPicking, LabelAxis, apply_plot_theme, cividis_rgb, outline_pen, text_colour_for

MIN_CELL_PX = 11  # below this the characters are left out and only the colours remain


def depth_labels(n_layer: int) -> list[str]:
    return ["embed"] + [f"block {i}" for i in range(n_layer)]


class LensTextItem(pg.GraphicsObject):
    """Draws ``chars[d][t]`` centred in cell (d, t); cells are unit squares in data coordinates."""

    def __init__(self) -> None:
        super().__init__()
        self.chars: list[list[str]] = []
        self.colours = np.zeros((0, 0, 3), np.uint8)
        self.hits = np.zeros((0, 0), bool)
        self._rect = QRectF()

    def set_cells(self, chars, colours: np.ndarray, hits: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.chars, self.colours, self.hits = chars, colours, hits
        rows = len(chars)
        cols = len(chars[0]) if rows else 0
        self._rect = QRectF(0, 0, cols, rows)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self._rect

    def paint(self, p: QPainter, *args) -> None:
        if not self.chars:
            return
        tr = p.transform()
        cw, ch = abs(tr.m11()), abs(tr.m22())
        if min(cw, ch) < MIN_CELL_PX:
            return
        p.save()
        p.resetTransform()
        font = QFont("DejaVu Sans Mono")
        font.setPixelSize(int(max(8, min(ch * 0.62, cw * 0.8, 22))))
        bold = QFont(font)
        bold.setBold(True)
        bold.setUnderline(True)
        for d, row in enumerate(self.chars):
            for t, s in enumerate(row):
                c = tr.map(QPointF(t + 0.5, d + 0.5))
                rect = QRectF(c.x() - cw / 2, c.y() - ch / 2, cw, ch)
                p.setFont(bold if self.hits[d, t] else font)
                p.setPen(QColor(text_colour_for(self.colours[d, t])))
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, s)
        p.restore()


class LogitLensView(CellPicking, pg.GraphicsLayoutWidget):
    """The lens heatmap. ``cellClicked(depth, position)`` on a left click."""

    cellClicked = Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(220, 120)
        self.setToolTip("Click a cell to select that layer and position.")
        self.left = LabelAxis("left")
        self.bottom = LabelAxis("bottom")
        self.plot = self.addPlot(row=0, col=0, axisItems={"left": self.left, "bottom": self.bottom})
        self.plot.setLabel("bottom", "input character at each position")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.vb = self.plot.getViewBox()
        self.vb.invertY(True)
        self.vb.setDefaultPadding(0.0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.text = LensTextItem()
        self.text.setZValue(2)
        self.outline = pg.QtWidgets.QGraphicsRectItem()
        self.outline.setZValue(3)
        self.outline.setBrush(Qt.BrushStyle.NoBrush)
        for item in (self.image, self.text, self.outline):
            self.plot.addItem(item)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=th.HEATMAP_CMAP, interactive=False,
                                        colorMapMenu=False, width=16)
        self.colorbar.setImageItem(self.image)
        self.colorbar.axis.setLabel("p(top character)")
        self.addItem(self.colorbar, row=0, col=1)
        self.top_ids = np.zeros((0, 0), np.int64)
        self.top_probs = np.zeros((0, 0))
        self.probs = np.zeros((0, 0, 0))
        self.vocab: tuple[str, ...] = ()
        self.inputs: list[str] = []
        self.actual: np.ndarray = np.zeros(0, np.int64)
        self._shape = (-1, -1)
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.scene().sigMouseMoved.connect(self._on_moved)
        self.apply_theme(th.LIGHT)

    def apply_theme(self, theme: th.Theme) -> None:
        apply_plot_theme(self, [self.plot], theme)
        ax = self.colorbar.axis
        ax.setPen(pg.mkPen(theme.foreground))
        ax.setTextPen(pg.mkPen(theme.foreground))
        self.outline.setPen(outline_pen(theme))

    def show_lens(self, probs: np.ndarray, vocab, display_vocab: list[str], inputs: list[str],
                  actual: np.ndarray, n_layer: int) -> None:
        """``probs`` (L+1, T, V) softmax of the lens logits; ``actual`` (T,) true next id or -1."""
        D, T = probs.shape[0], probs.shape[1]
        self.probs, self.vocab, self.inputs, self.actual = probs, tuple(vocab), list(inputs), actual
        self.left.set_labels(depth_labels(n_layer))
        self.bottom.set_labels(inputs)
        if T == 0:
            self.top_ids = np.zeros((D, 0), np.int64)
            self.top_probs = np.zeros((D, 0))
            self.image.clear()
            self.text.set_cells([], np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), bool))
            self.outline.setVisible(False)
            self._shape = (D, 0)
            return
        self.top_ids = probs.argmax(-1)  # (D, T)
        self.top_probs = np.take_along_axis(probs, self.top_ids[..., None], -1)[..., 0]  # (D, T)
        self.image.setImage(self.top_probs.astype(np.float32), autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(0, 0, T, D))
        chars = [[display_vocab[i] for i in row] for row in self.top_ids]
        hits = self.top_ids == actual[None, :]
        self.text.set_cells(chars, cividis_rgb(self.top_probs), hits)
        if (D, T) != self._shape:
            pad = max(0.6, 0.015 * T)  # room for the first and last position labels
            self.vb.setLimits(xMin=-pad - 0.5, xMax=T + pad + 0.5, yMin=-0.5, yMax=D + 0.5)
            self.vb.setRange(xRange=(-pad, T + pad), yRange=(0, D), padding=0.0)
            self._shape = (D, T)

    def set_selected(self, depth: int, position: int | None) -> None:
        if position is None or self._shape[1] <= 0:
            self.outline.setVisible(False)
            return
        self.outline.setRect(QRectF(position, depth, 1, 1))
        self.outline.setVisible(True)

    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        D, T = self._shape
        if T <= 0 or not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        pt = self.vb.mapSceneToView(scene_pos)
        d, t = int(math.floor(pt.y())), int(math.floor(pt.x()))
        return (d, t) if 0 <= d < D and 0 <= t < T else None

    def describe(self, d: int, t: int) -> str:
        from ...core.tokenizer import display_char

        where = "the embedding output" if d == 0 else f"the output of block {d - 1}"
        order = np.argsort(-self.probs[d, t])[:3]
        guesses = ", ".join(f"'{display_char(self.vocab[i])}' {self.probs[d, t, i]:.3f}" for i in order)
        s = f"position {t} (input '{self.inputs[t]}'), read at {where}:\ntop guesses {guesses}"
        a = int(self.actual[t])
        if a >= 0:
            s += f"\ntrue next '{display_char(self.vocab[a])}': p = {self.probs[d, t, a]:.3f}"
        return s

