"""``WrappedText``: text that changes on every keystroke without re-laying out the window, and the
flow layout of the panels' control bars, which must report the height its wrapped rows take."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.gui.panels._attn_flow import FlowLayout
from explorer.gui.wrapped_text import WrappedText


class LayoutRequests(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def holder(qtbot, *widgets, width=300):
    box = QWidget()
    lay = QVBoxLayout(box)
    for w in widgets:
        lay.addWidget(w)
    lay.addStretch(1)
    qtbot.addWidget(box)
    box.resize(width, 400)
    box.show()
    qtbot.waitExposed(box)
    qtbot.wait(20)
    return box


def test_same_line_count_repaints_without_a_layout_request(qtbot):
    text = WrappedText("position 3 'a': entropy 1.23 nats")
    box = holder(qtbot, text)
    counter = LayoutRequests()
    box.installEventFilter(counter)
    for i in range(5):
        text.setText(f"position {i + 4} 'b': entropy 1.{i}5 nats")
        qtbot.wait(5)
    assert counter.count == 0 and text.text() == "position 8 'b': entropy 1.45 nats"
    # a plain QLabel asks for a layout on every change: the reason this widget exists
    label = QLabel("x")
    label.setWordWrap(True)
    box.layout().insertWidget(0, label)
    qtbot.wait(20)
    counter.count = 0
    label.setText("y")
    qtbot.wait(5)
    assert counter.count >= 1


def test_more_lines_grow_the_widget_and_its_minimum(qtbot):
    text = WrappedText("short")
    box = holder(qtbot, text, width=200)  # noqa: F841 (keeps the window alive)
    one_line = text.height()
    assert text.minimumSizeHint().height() == text.heightForWidth(text.width())
    text.setText("a much longer text that cannot fit on one line of a two hundred pixel wide box " * 2)
    qtbot.waitUntil(lambda: text.height() > 2 * one_line, timeout=2000)
    assert text.minimumSizeHint().height() >= text.heightForWidth(text.width()) > 2 * one_line


def test_rich_text_keeps_its_markup_and_measures_the_rendered_text(qtbot):
    text = WrappedText(rich=True)
    box = holder(qtbot, text, width=400)  # noqa: F841 (keeps the window alive)
    text.setText("<b>T = 27</b> of block_size 128 · <span style='color:#D55E00'>cropped</span>")
    assert "<b>T = 27</b>" in text.text()
    assert text.heightForWidth(400) < text.heightForWidth(60)  # wraps when narrow
    img = text.grab().toImage()
    inked = sum(1 for x in range(0, img.width(), 2) for y in range(0, img.height(), 2)
                if img.pixelColor(x, y).lightness() < 128)
    assert inked > 20  # the text is really drawn


def test_flow_layout_minimum_covers_its_wrapped_rows(qtbot):
    bar = QWidget()
    flow = FlowLayout(bar)
    for i in range(12):
        flow.addWidget(QLabel(f"control {i}"))
    box = holder(qtbot, bar, width=700)
    wide = bar.minimumSizeHint().height()
    box.resize(160, 600)
    qtbot.waitUntil(lambda: bar.minimumSizeHint().height() > 2 * wide, timeout=2000)
    assert bar.height() >= flow.heightForWidth(bar.width()) - 1


def test_the_height_is_that_of_the_text_as_drawn(qtbot):
    """The text is drawn 1 px in from each side, so a width that only just fits it on one line
    wraps it when drawn: the widget must be two lines tall there, not one (the second line clipped)."""
    from PySide6.QtCore import QRect

    from explorer.gui.wrapped_text import WrappedText as W

    words = "entropy 1.23 nats after position 3"
    for widget in (W(words), W(words, rich=True)):
        qtbot.addWidget(widget)
        one_line = widget.heightForWidth(4000)
        fm = widget.fontMetrics()
        fits = fm.boundingRect(QRect(0, 0, 4000, 1000), W._FLAGS, words).width()
        assert widget.heightForWidth(fits + 1) > one_line  # drawn in fits − 1 px: two lines
        assert widget.heightForWidth(fits + 8) == one_line
