"""The per-position predictions strip: under each prompt character, the model's top guess for the
character after it.

Four rows per column: the position (every fifth), the prompt character, the predicted next
character on a cividis background (its probability at T = 1), and a mark: ✓ when the prompt's next
character is that guess, ✗ when it is not, · at the last position (whose next character is not
written yet). One painted widget (no child widgets), so a 256-character prompt costs one paint.
Clicking a column selects that position.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QToolTip, QWidget

from .. import theme as th
from ._attn_style import cividis_rgb, mono_font, palette_theme, text_colour_for, tick_font

ROW_NAMES = ("pos", "input", "predicts", "right?")
RIGHT, WRONG = th.OKABE_ITO["green"], th.OKABE_ITO["vermillion"]


@dataclass
class StripData:
    inputs: list[str]  # visible prompt characters, (T,)
    predicted: list[str]  # visible top-1 predictions, (T,)
    probs: np.ndarray  # probability of the top-1 prediction, (T,)
    correct: np.ndarray  # 1 right, 0 wrong, -1 unknown (last position), (T,)
    actual_prob: np.ndarray  # probability given to the true next character, NaN at the last, (T,)
    actual: list[str]  # visible true next characters ('' at the last), (T,)


def _metrics() -> tuple[int, int]:
    fm = QFontMetrics(mono_font(th.FONT_PT + 1))
    col_w = max(fm.horizontalAdvance("W"), fm.horizontalAdvance("⏎")) + 12
    row_h = fm.height() + 8
    return col_w, row_h


class _Header(QWidget):
    """The row names, fixed at the left while the strip scrolls."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        _, row_h = _metrics()
        self._row_h = row_h
        fm = QFontMetrics(tick_font())
        self.setFixedWidth(max(fm.horizontalAdvance(s) for s in ROW_NAMES) + 24)
        self.setFixedHeight(row_h * len(ROW_NAMES) + 4)

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        theme = palette_theme(self)
        p.fillRect(self.rect(), QColor(theme.background))
        p.setFont(tick_font())
        p.setPen(QColor(theme.foreground))
        for r, name in enumerate(ROW_NAMES):
            p.drawText(QRect(0, 2 + r * self._row_h, self.width() - 8, self._row_h),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, name)


class _Columns(QWidget):
    positionClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.col_w, self.row_h = _metrics()
        self.data: StripData | None = None
        self.selected: int | None = None
        self.setMouseTracking(True)
        self.setFixedHeight(self.row_h * len(ROW_NAMES) + 4)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        n = len(self.data.inputs) if self.data else 0
        return QSize(max(1, n) * self.col_w + 4, self.row_h * len(ROW_NAMES) + 4)

    def set_data(self, data: StripData | None, selected: int | None) -> None:
        self.data, self.selected = data, selected
        self.setFixedWidth(self.sizeHint().width())
        self.update()

    def column_at(self, x: float) -> int | None:
        if not self.data:
            return None
        i = int((x - 2) // self.col_w)
        return i if 0 <= i < len(self.data.inputs) else None

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        theme = palette_theme(self)
        p.fillRect(self.rect(), QColor(theme.background))
        d = self.data
        if not d:
            return
        cw, rh = self.col_w, self.row_h
        colours = cividis_rgb(d.probs)  # (T, 3)
        first = max(0, int((ev.rect().left() - 2) // cw))
        last = min(len(d.inputs), int((ev.rect().right() - 2) // cw) + 1)
        small, mono = tick_font(th.FONT_PT - 3), mono_font(th.FONT_PT + 1)
        for i in range(first, last):
            x = 2 + i * cw
            if i % 5 == 0:
                p.setFont(small)
                p.setPen(QColor(theme.foreground))
                p.drawText(QRect(x, 2, cw, rh), Qt.AlignmentFlag.AlignCenter, str(i))
            p.setFont(mono)
            p.setPen(QColor(theme.foreground))
            p.drawText(QRect(x, 2 + rh, cw, rh), Qt.AlignmentFlag.AlignCenter, d.inputs[i])
            cell = QRect(x + 1, 2 + 2 * rh + 1, cw - 2, rh - 2)
            rgb = colours[i]
            p.fillRect(cell, QColor(int(rgb[0]), int(rgb[1]), int(rgb[2])))
            p.setPen(QColor(text_colour_for(rgb)))
            p.drawText(cell, Qt.AlignmentFlag.AlignCenter, d.predicted[i])
            mark, colour = {1: ("✓", RIGHT), 0: ("✗", WRONG)}.get(int(d.correct[i]), ("·", th.OKABE_ITO["grey"]))
            p.setPen(QColor(colour))
            p.drawText(QRect(x, 2 + 3 * rh, cw, rh), Qt.AlignmentFlag.AlignCenter, mark)
        if self.selected is not None and 0 <= self.selected < len(d.inputs):
            pen = QPen(QColor(th.OKABE_ITO["vermillion"]), 2.5)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRect(2 + self.selected * cw, 2 + rh, cw, 3 * rh - 1))

    def describe(self, i: int) -> str:
        d = self.data
        s = (f"position {i}, after '{d.inputs[i]}': the model's top guess is '{d.predicted[i]}' "
             f"with p = {d.probs[i]:.3f}")
        if d.correct[i] < 0:
            return s + "\n(the last position: its next character is not in the prompt yet)"
        verdict = "right" if d.correct[i] == 1 else "wrong"
        return s + f"\nthe prompt continues with '{d.actual[i]}' (p = {d.actual_prob[i]:.3f}): {verdict}"

    def event(self, ev) -> bool:
        if ev.type() == QEvent.Type.ToolTip:
            i = self.column_at(ev.pos().x())
            if i is not None:
                QToolTip.showText(ev.globalPos(), self.describe(i), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(ev)

    def mousePressEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        if ev.button() == Qt.MouseButton.LeftButton:
            i = self.column_at(ev.position().x())
            if i is not None:
                self.positionClicked.emit(i)
                return
        super().mousePressEvent(ev)


class PredictionStrip(QWidget):
    """Header + horizontally scrolling columns. ``positionClicked(i)`` on a click."""

    positionClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.header = _Header()
        self.columns = _Columns()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.columns)
        self.scroll.setWidgetResizable(False)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        sb_h = self.scroll.horizontalScrollBar().sizeHint().height()
        self.scroll.setFixedHeight(self.columns.height() + sb_h + 2)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.header, 0, Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.scroll, 1)
        self.setFixedHeight(self.scroll.height())
        self.columns.positionClicked.connect(self.positionClicked)

    @property
    def data(self) -> StripData | None:
        return self.columns.data

    def set_data(self, data: StripData | None, selected: int | None) -> None:
        self.columns.set_data(data, selected)
        if selected is not None and data:
            x = 2 + selected * self.columns.col_w
            self.scroll.ensureVisible(x + self.columns.col_w // 2, self.columns.height() // 2,
                                      3 * self.columns.col_w, 0)
