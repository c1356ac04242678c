"""Layout helpers that keep the attention and logits panels usable in a narrow dock.

* ``FlowLayout``: lays its widgets out left to right and wraps onto a new line when the row is
  full (Qt's flow-layout example), so a control bar never forces the dock wider than it is;
* ``group(*widgets)``: a label and its control in one unbreakable piece for a ``FlowLayout``;
* ``ResponsiveSplitter``: a splitter that puts its views side by side when it is wide and stacks
  them when it is narrow.
"""
from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLayout, QSizePolicy, QSplitter, QWidget


class FlowLayout(QLayout):
    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items = []
        self._spacing = spacing
        self._wrapped_height = 0  # the height the rows take at the width last laid out
        self.setContentsMargins(4, 2, 4, 2)

    def addItem(self, item) -> None:  # noqa: N802 (Qt API)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):  # noqa: N802 (Qt API)
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):  # noqa: N802 (Qt API)
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 (Qt API)
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt API)
        return self._do_layout(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 (Qt API)
        super().setGeometry(rect)
        height = self._do_layout(rect, apply=True)
        if height != self._wrapped_height:  # a row more or less: the minimum height changed
            self._wrapped_height = height
            owner = self.parentWidget()
            if owner is not None:
                owner.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802 (Qt API)
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m: QMargins = self.contentsMargins()
        size = size + QSize(m.left() + m.right(), m.top() + m.bottom())
        # as tall as the wrapped rows at the current width: boxes and splitters above read only the
        # minimum, and a shorter one would let the views below be squeezed under their own minimum
        return QSize(size.width(), max(size.height(), self._wrapped_height))

    def _do_layout(self, rect: QRect, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line_h = area.x(), area.y(), 0
        for item in self._items:
            if item.widget() is not None and not item.widget().isVisibleTo(item.widget().parentWidget()):
                continue
            hint = item.sizeHint()
            if x + hint.width() > area.right() + 1 and line_h > 0:
                x, y = area.x(), y + line_h + self._spacing
                line_h = 0
            if apply:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._spacing
            line_h = max(line_h, hint.height())
        return y + line_h - rect.y() + m.bottom()


def group(*widgets: QWidget) -> QWidget:
    """Widgets kept together on one line of a ``FlowLayout`` (e.g. a label and its spin box)."""
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(4)
    for w in widgets:
        lay.addWidget(w)
    box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
    return box


class ResponsiveSplitter(QSplitter):
    """Horizontal when at least ``min_side_by_side`` pixels wide, vertical otherwise."""

    def __init__(self, min_side_by_side: int = 760, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.min_side_by_side = min_side_by_side

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        wanted = (Qt.Orientation.Horizontal if ev.size().width() >= self.min_side_by_side
                  else Qt.Orientation.Vertical)
        if wanted != self.orientation():
            self.setOrientation(wanted)
            self.updateGeometry()  # stacked, its minimum height is the sum of its views': tell the layout
        super().resizeEvent(ev)
