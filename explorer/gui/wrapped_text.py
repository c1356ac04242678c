"""``WrappedText``: word-wrapped text that can change on every keystroke without re-laying out the window."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QRect, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QSizePolicy, QWidget


class WrappedText(QWidget):
    """Plain text, word-wrapped to the widget's width, that changes without shaking the layout.

    A word-wrapped ``QLabel`` asks its whole window to lay out again on every ``setText``, even when
    the new text needs exactly as many lines as the old; with a dozen captions updated per
    keystroke that re-layout cost more than drawing the plots. This widget only asks for a new
    layout when the number of lines it needs changes, and otherwise just repaints itself.
    ``rich=True`` takes Qt's HTML subset (bold, italics, colours) instead of plain text."""

    _FLAGS = Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

    def __init__(self, text: str = "", parent: QWidget | None = None, rich: bool = False) -> None:
        super().__init__(parent)
        self._text = text
        self._doc: QTextDocument | None = None
        if rich:  # HTML (bold, colour): laid out and drawn by a QTextDocument
            self._doc = QTextDocument(self)
            self._doc.setDocumentMargin(1)
            self._doc.setDefaultFont(self.font())
            self._doc.setHtml(text)
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self._height_at = (-1, -1)  # (width, height) last reported to the layout
        self._heights: dict[int, int] = {}  # width → height for the current text (layouts ask often)

    def text(self) -> str:
        return self._text

    def plain_text(self) -> str:
        """The text as a reader sees it (the HTML of a ``rich=True`` one without its markup)."""
        return self._doc.toPlainText() if self._doc is not None else self._text

    def setText(self, text: str) -> None:  # noqa: N802 (QLabel's name, so callers read alike)
        if text == self._text:
            return
        self._text = text
        self._heights.clear()
        if self._doc is not None:
            self._doc.setHtml(text)
        w = self.width()
        if self._height_at[0] == w and self.heightForWidth(w) == self._height_at[1]:
            self.update()  # same number of lines: a repaint is enough
        else:
            self.updateGeometry()
            self.update()

    def _text_height(self, width: int) -> int:
        """Height of the text wrapped at the width paintEvent draws it in (the widget's less 1 px a side)."""
        inner = max(1, width - 2)
        if self._doc is not None:
            self._doc.setTextWidth(inner)
            return int(self._doc.size().height() + 0.999)
        rect = self.fontMetrics().boundingRect(QRect(0, 0, inner, 100000), self._FLAGS, self._text or " ")
        return rect.height()

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt API)
        height = self._heights.get(width)
        if height is None:
            if len(self._heights) > 16:
                self._heights.clear()
            height = self._heights[width] = self._text_height(width) + 2
        return height

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        fm = self.fontMetrics()
        width = min(fm.horizontalAdvance(self.plain_text()) + 4, 60 * fm.averageCharWidth())
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        # the height the text needs at the current width: splitters and scroll areas size from the
        # minimum and do not ask heightForWidth, and a shorter box would squeeze the views below
        w = 8 * self.fontMetrics().averageCharWidth()
        return QSize(w, self.heightForWidth(max(self.width(), w)))

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        self._height_at = (self.width(), self.heightForWidth(self.width()))
        if self.height() < self._height_at[1]:
            self.updateGeometry()
        super().resizeEvent(ev)

    def changeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        if ev.type() == QEvent.Type.FontChange:
            self._heights.clear()
            if self._doc is not None:
                self._doc.setDefaultFont(self.font())
        super().changeEvent(ev)

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        if self._doc is not None:
            self._doc.setTextWidth(max(1, self.width() - 2))
            ctx = QAbstractTextDocumentLayout.PaintContext()
            ctx.palette.setColor(QPalette.ColorRole.Text, self.palette().color(self.foregroundRole()))
            p.translate(1, max(0.0, (self.height() - self._doc.size().height()) / 2))
            self._doc.documentLayout().draw(p, ctx)
            p.end()
            return
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(self.rect().adjusted(1, 1, -1, -1), self._FLAGS, self._text)
        p.end()
