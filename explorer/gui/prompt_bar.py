"""The prompt bar: a multi-line prompt field and, under it, the prompt's tokens as clickable chips.

* Whitespace is visible on the chips (``⏎`` newline, ``␣`` space, ``⇥`` tab).
* Characters outside the model's vocabulary are drawn in red with a dashed border; their tooltip
  explains that the model never sees them.
* When the prompt holds more known characters than ``block_size``, the front is cropped (as the
  lecture's ``generate`` crops): a notice says so and the last few cropped characters are shown
  greyed.
* Clicking a chip selects that token position in every view (``positionClicked``).

The chips are painted by one widget (``TokenStrip``), not one widget per chip, so a full
``block_size`` prompt costs one paint per keystroke.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen, QRegion, QTextCursor
from PySide6.QtWidgets import (QPlainTextEdit, QScrollArea, QSizePolicy, QToolTip, QVBoxLayout,
                               QWidget)

from . import theme
from .wrapped_text import WrappedText

DEFAULT_PROMPT = "ROMEO:\nBut soft, what light"
MAX_CHIPS = 600  # beyond this many characters after the context start, only the last ones get chips
SHOWN_CROPPED = 8  # cropped characters shown greyed before the context


def display_char(ch: str) -> str:
    """Visible whitespace: the same mapping as ``explorer.core.tokenizer.display_char`` (kept here so
    the prompt bar works before torch and the core are loaded)."""
    special = {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}
    if ch in special:
        return special[ch]
    return ch if ch.isprintable() else f"U+{ord(ch):04X}"


@dataclass(frozen=True)
class Chip:
    index: int  # index of the character in the prompt text
    char: str
    label: str  # what is drawn
    position: int | None  # token position in the trace; None if not traced
    state: str  # "ok" | "unknown" | "cropped" | "ellipsis"


@dataclass(frozen=True)
class ChipModel:
    chips: tuple[Chip, ...]
    n_tokens: int  # T: characters fed to the model
    n_unknown: int
    n_cropped: int  # known characters dropped from the front
    n_hidden: int  # characters after the context start that got no chip (very long prompts)


def make_chips(text: str, stoi: dict[str, int], block_size: int) -> ChipModel:
    """Which characters of ``text`` the model sees, at which position, following the core's rules:
    unknown characters are skipped, then the front is cropped to ``block_size``."""
    known = [i for i, ch in enumerate(text) if ch in stoi]
    n_unknown = len(text) - len(known)
    cropped = max(0, len(known) - block_size)
    traced = known[cropped:]
    pos_of = {idx: p for p, idx in enumerate(traced)}
    start = traced[0] if (cropped and traced) else 0
    chips: list[Chip] = []
    if cropped:
        chips.append(Chip(-1, "", "…", None, "ellipsis"))
        for i in known[max(0, cropped - SHOWN_CROPPED):cropped]:
            chips.append(Chip(i, text[i], display_char(text[i]), None, "cropped"))
    first = start
    n_hidden = 0
    if len(text) - start > MAX_CHIPS:
        first = len(text) - MAX_CHIPS
        n_hidden = first - start
        chips.append(Chip(-1, "", "…", None, "ellipsis"))
    for i in range(first, len(text)):
        ch = text[i]
        if i in pos_of:
            chips.append(Chip(i, ch, display_char(ch), pos_of[i], "ok"))
        else:
            chips.append(Chip(i, ch, display_char(ch), None, "unknown"))
    return ChipModel(tuple(chips), len(traced), n_unknown, cropped, n_hidden)


class TokenStrip(QWidget):
    """The chips, painted in wrapped rows. Emits ``positionClicked(position)``."""

    positionClicked = Signal(int)

    PAD_X, PAD_Y, GAP, ROW_GAP = 5, 3, 3, 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ChipModel((), 0, 0, 0, 0)
        self.selected: int | None = None
        self.vocab_size = 0
        self._rects: list[QRect] = []
        self._layout_width = -1
        f = QFont(self.font())
        f.setPointSize(theme.FONT_PT)
        self.setFont(f)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("The prompt's characters as the model sees them. Click one to select its "
                        "position in every view.")

    # ---- data ---------------------------------------------------------------------------------
    def set_model(self, model: ChipModel) -> None:
        old_chips, old_rects = self.model.chips, self._rects
        self.model = model
        before = self.minimumHeight()
        self._layout(max(self.width(), 50))
        if self.minimumHeight() != before:  # a row more or less: the only case that needs a re-layout
            self.updateGeometry()
        # repaint only the chips that changed (typing at the end changes one or two, not all)
        changed = QRegion()
        for k in range(max(len(old_chips), len(model.chips))):
            old = (old_chips[k], old_rects[k]) if k < len(old_chips) and k < len(old_rects) else None
            new = (model.chips[k], self._rects[k]) if k < len(model.chips) else None
            if old != new:
                for pair in (old, new):
                    if pair is not None:
                        changed += pair[1].adjusted(-1, -1, 1, 1)
        if not changed.isEmpty():
            self.update(changed)

    def set_selected(self, position: int | None) -> None:
        if position != self.selected:
            rects = [r for chip, r in zip(self.model.chips, self._rects)
                     if chip.position is not None and chip.position in (self.selected, position)]
            self.selected = position
            for r in rects:
                self.update(r.adjusted(-1, -1, 1, 1))

    # ---- layout -------------------------------------------------------------------------------
    def _chip_width(self, fm: QFontMetrics, label: str) -> int:
        return max(fm.horizontalAdvance(label) + 2 * self.PAD_X, fm.height() + 2 * self.PAD_Y)

    def _layout(self, width: int) -> int:
        fm = QFontMetrics(self.font())
        h = fm.height() + 2 * self.PAD_Y
        x = y = 0
        rects = []
        for chip in self.model.chips:
            w = self._chip_width(fm, chip.label)
            if x > 0 and x + w > width:
                x, y = 0, y + h + self.ROW_GAP
            rects.append(QRect(x, y, w, h))
            x += w + self.GAP
        self._rects = rects
        self._layout_width = width
        height = (y + h) if rects else h
        if self.minimumHeight() != height:  # so the scroll area scrolls instead of clipping rows
            self.setMinimumHeight(height)
        return height

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._layout(max(width, 50))

    def sizeHint(self) -> QSize:  # noqa: N802
        w = self.width() if self.width() > 50 else 600
        return QSize(w, self.heightForWidth(w))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(100, QFontMetrics(self.font()).height() + 2 * self.PAD_Y)

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._layout(self.width())
        super().resizeEvent(event)

    def chip_at(self, pos: QPoint) -> int | None:
        if self._layout_width != self.width():
            self._layout(self.width())
        for k, r in enumerate(self._rects):
            if r.contains(pos):
                return k
        return None

    def chip_rect(self, k: int) -> QRect:
        if self._layout_width != self.width():
            self._layout(self.width())
        return self._rects[k]

    # ---- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        if self._layout_width != self.width():
            self._layout(self.width())
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        base_bg = pal.base().color()
        fg = pal.text().color()
        accent = QColor(theme.OKABE_ITO["blue"])
        chip_bg = QColor(base_bg).darker(108) if base_bg.lightness() > 128 else QColor(base_bg).lighter(150)
        exposed = event.rect()
        for chip, r in zip(self.model.chips, self._rects):
            if not r.intersects(exposed):
                continue
            if chip.state == "ellipsis":
                p.setPen(QColor(theme.OKABE_ITO["grey"]))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, chip.label)
                continue
            if chip.state == "ok" and chip.position == self.selected:
                p.setBrush(accent)
                p.setPen(QPen(accent.darker(130), 1))
                text_color = QColor("white")
            elif chip.state == "unknown":
                p.setBrush(QColor("#FBE3D6"))
                pen = QPen(QColor(theme.OKABE_ITO["vermillion"]), 1.5)
                pen.setStyle(Qt.PenStyle.DashLine)
                p.setPen(pen)
                text_color = QColor(theme.OKABE_ITO["vermillion"]).darker(120)
            elif chip.state == "cropped":
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(QColor(theme.OKABE_ITO["grey"]), 1, Qt.PenStyle.DotLine))
                text_color = QColor(theme.OKABE_ITO["grey"])
            else:
                p.setBrush(chip_bg)
                p.setPen(QPen(chip_bg.darker(115), 1))
                text_color = fg
            p.drawRoundedRect(r.adjusted(0, 0, -1, -1), 4, 4)
            if chip.label != chip.char:  # whitespace symbols: a softer colour than real characters
                text_color = QColor(text_color)
                if chip.state == "ok" and chip.position != self.selected:
                    text_color = QColor(theme.OKABE_ITO["grey"]).darker(130)
            p.setPen(text_color)
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, chip.label)
        p.end()

    # ---- interaction --------------------------------------------------------------------------
    def _tooltip(self, chip: Chip) -> str:
        code = f"U+{ord(chip.char):04X}" if chip.char else ""
        if chip.state == "ok":
            return (f"position {chip.position}: {chip.label!s} ({code})\n"
                    f"Click to select this position in every view.")
        if chip.state == "unknown":
            return (f"{chip.label} ({code}) is not in this model's vocabulary of {self.vocab_size} "
                    f"characters, so it is left out: the model never sees it, and the characters "
                    f"around it are fed as if it were not there. A character-level model only knows "
                    f"the characters of the text it was trained on.")
        if chip.state == "cropped":
            return ("Cropped: the model reads at most block_size characters, so the front of a long "
                    "prompt is left out (as the lecture's generate() does).")
        return "More characters before these (see the notice above the chips)."

    def event(self, event) -> bool:
        if event.type() == event.Type.ToolTip:
            k = self.chip_at(event.pos())
            if k is not None:
                QToolTip.showText(event.globalPos(), self._tooltip(self.model.chips[k]), self)
            else:
                QToolTip.showText(event.globalPos(), self.toolTip(), self)
            return True
        return super().event(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        k = self.chip_at(event.position().toPoint())
        clickable = k is not None and self.model.chips[k].state == "ok"
        self.setCursor(Qt.CursorShape.PointingHandCursor if clickable else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            k = self.chip_at(event.position().toPoint())
            if k is not None and self.model.chips[k].position is not None:
                self.positionClicked.emit(self.model.chips[k].position)
                return
        super().mousePressEvent(event)


class PromptEdit(QPlainTextEdit):
    """The prompt field. Dropping a file on it opens the file instead of pasting its path."""

    filesDropped = Signal(list)

    def canInsertFromMimeData(self, source) -> bool:  # noqa: N802
        return source.hasUrls() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in source.urls() if u.isLocalFile()] if source.hasUrls() else []
        if files:
            self.filesDropped.emit(files)
            return
        super().insertFromMimeData(source)


class PromptBar(QWidget):
    """Prompt field + token chips + a notice line. Signals: ``textChanged(str)``,
    ``positionClicked(int)``, ``filesDropped(list)``."""

    textChanged = Signal(str)
    positionClicked = Signal(int)
    filesDropped = Signal(list)

    def __init__(self, parent: QWidget | None = None, text: str = DEFAULT_PROMPT) -> None:
        super().__init__(parent)
        self.stoi: dict[str, int] = {}
        self.block_size = 0
        self.chips = ChipModel((), 0, 0, 0, 0)
        self._position: int | None = None
        self._message = "Loading the model…"

        self.edit = PromptEdit()
        self.edit.setObjectName("prompt")
        f = QFont("monospace")
        f.setStyleHint(QFont.StyleHint.Monospace)
        f.setPointSize(theme.FONT_PT + 1)
        self.edit.setFont(f)
        self.edit.setPlaceholderText("Type a prompt: every view updates as you type.")
        self.edit.setToolTip("The prompt (Ctrl+L). Every keystroke re-runs the model on it in the "
                             "background. Enter makes a new line, which the model sees as ⏎.")
        self.edit.setTabChangesFocus(True)
        self.edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        line = QFontMetrics(f).lineSpacing()
        self.edit.setMinimumHeight(2 * line + 12)
        self.edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        self.notice = WrappedText(rich=True)  # changes on every keystroke: no window re-layout for that
        self.notice.setObjectName("promptNotice")
        self.notice.setToolTip("What the model is fed: T characters, after leaving out unknown ones "
                               "and cropping to block_size.")

        self.strip = TokenStrip()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.strip)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setMinimumHeight(self.strip.minimumSizeHint().height() + 6)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.notice)
        layout.addWidget(self.scroll, 1)

        self.edit.textChanged.connect(self._on_text_changed)
        self.edit.filesDropped.connect(self.filesDropped)
        self.strip.positionClicked.connect(self.positionClicked)
        self.set_text(text)
        self._update_notice()

    # ---- text ---------------------------------------------------------------------------------
    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)
        self.edit.moveCursor(QTextCursor.MoveOperation.End)

    def append_text(self, text: str) -> None:
        cursor = self.edit.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        self.edit.setTextCursor(cursor)
        self.edit.ensureCursorVisible()

    def focus_prompt(self) -> None:
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.edit.moveCursor(QTextCursor.MoveOperation.End)

    def _on_text_changed(self) -> None:
        text = self.text()
        self._rebuild_chips(text)
        self.textChanged.emit(text)

    # ---- model and selection ------------------------------------------------------------------
    def set_vocab(self, vocab, block_size: int) -> None:
        self.stoi = {ch: i for i, ch in enumerate(vocab)}
        self.block_size = block_size
        self.strip.vocab_size = len(vocab)
        self._rebuild_chips(self.text())

    def set_message(self, text: str) -> None:
        """What the notice line says while no model is loaded."""
        self._message = text
        self._update_notice()

    def set_selection(self, sel) -> None:
        self._position = sel.position
        self._sync_selected()

    def _sync_selected(self) -> None:
        T = self.chips.n_tokens
        pos = None if T == 0 else (T - 1 if self._position is None else max(0, min(self._position, T - 1)))
        self.strip.set_selected(pos)

    def _rebuild_chips(self, text: str) -> None:
        if not self.stoi:
            self.chips = ChipModel((), 0, 0, 0, 0)
        else:
            self.chips = make_chips(text, self.stoi, self.block_size)
        self.strip.set_model(self.chips)
        self._sync_selected()
        self._update_notice()

    def _update_notice(self) -> None:
        c = self.chips
        if not self.stoi:
            self.notice.setText(f"<i>{self._message}</i>")
            return
        parts = [f"<b>T = {c.n_tokens}</b> of block_size {self.block_size} characters fed to the model"]
        if c.n_tokens == 0:
            parts = ["<b>T = 0</b>: type a character the model knows"]
        red = theme.OKABE_ITO["vermillion"]
        if c.n_unknown:
            parts.append(f"<span style='color:{red}'>{c.n_unknown} unknown character"
                         f"{'s' if c.n_unknown != 1 else ''} left out (red; hover for why)</span>")
        if c.n_cropped:
            parts.append(f"<span style='color:{red}'>cropped: the first {c.n_cropped} known characters "
                         f"do not fit in block_size {self.block_size} and are left out</span>")
        if c.n_hidden:
            parts.append(f"{c.n_hidden} characters before the last {MAX_CHIPS} not shown as chips")
        if c.n_tokens:
            parts.append("click a character to select its position")
        self.notice.setText(" · ".join(parts))
