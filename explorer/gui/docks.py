"""How panels sit in the main window's docks: ``PanelScroll`` (a panel fills its dock and scrolls
only when the dock is smaller than the panel's minimum) and the placeholder shown until a panel
exists or when it cannot be shown."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QLabel, QScrollArea, QWidget


class PanelScroll(QScrollArea):
    """Holds a panel in a dock. The panel fills the dock; only when the dock is smaller than the
    panel's minimum size do scroll bars appear, so a panel's minimum never forces the window past
    the screen. (``setWidgetResizable`` would size a panel holding word-wrapped text to its
    *preferred* height for the width, which is often taller than the dock, and hide its bottom.)"""

    def __init__(self, widget: QWidget) -> None:
        super().__init__()
        self.setObjectName(f"scroll_{widget.objectName() or type(widget).__name__}")
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setWidgetResizable(False)
        self.setWidget(widget)
        widget.installEventFilter(self)

    def fit(self) -> None:
        w = self.widget()
        if w is None:
            return
        least = w.minimumSizeHint().expandedTo(w.minimumSize())
        view = self.viewport().size()
        w.resize(max(view.width(), least.width()), max(view.height(), least.height()))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.fit()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, self, self.fit)
        return False


def scrolled(widget: QWidget) -> QScrollArea:
    return PanelScroll(widget)


def placeholder(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setStyleSheet("color: #777; font-size: 13pt; padding: 12px")
    return label
