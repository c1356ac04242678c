"""The contract every panel implements.

* ``set_trace(trace)``: render a new ``Trace`` by updating items built once (``setData`` /
  ``setImage``); never rebuild widgets per keystroke, never touch torch.
* ``set_selection(sel)``: re-render from the stored trace for a new ``Selection``.
* ``selectionRequested`` (signal, dict): ask the controller to change the shared selection, e.g.
  ``{"position": 3}`` or ``{"layer": 2, "head": 1}``.
* ``appendTextRequested`` (signal, str): ask for text to be appended to the prompt (the logits
  panel's Generate does this one character at a time, so every view animates).
* ``export_views()``: the figures this panel can export, as ``ExportView`` objects (a name, the
  QWidget or QGraphicsItem to render, and a title describing what is shown).
* ``export_data()``: the numbers behind the panel, ``{name: table_or_array}``: a ``Table`` for CSV
  and numpy arrays (or a dict of them) for NPZ.
* ``export_settings()`` (optional): panel settings to record with its figures.

Every panel gets a right-click menu (Export view…, Copy image, Export data…) from this base class;
see ``explorer.gui.export``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QToolButton, QWhatsThis, QWidget

from ..selection import Selection
from ..wrapped_text import WrappedText

if TYPE_CHECKING:  # panels only read traces; importing the trace module would load torch
    from ...core.trace import Trace


@dataclass
class ExportView:
    name: str  # file-name friendly, e.g. "attention_heatmap"
    widget: Any  # a QWidget (pyqtgraph GraphicsLayoutWidget, PlotWidget, ...) to render
    title: str  # "Attention · block 2 · head 1" — the export adds model name and prompt


@dataclass
class Table:
    """Rows for a CSV file."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


class Panel(QWidget):
    """Base class for the analysis panels. Subclasses set ``title`` and ``help_text``."""

    selectionRequested = Signal(dict)
    appendTextRequested = Signal(str)

    title: str = "Panel"
    help_text: str = ""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace: Trace | None = None
        self.selection = Selection()

    def set_trace(self, trace: Trace) -> None:
        self.trace = trace
        self.render()

    def set_selection(self, sel: Selection) -> None:
        self.selection = sel
        if self.trace is not None:
            self.render()

    def render(self) -> None:
        """Update the view from ``self.trace`` and ``self.selection``."""

    def export_views(self) -> list[ExportView]:
        return []

    def export_data(self) -> dict[str, Any]:
        return {}

    # ---- export menus (explorer.gui.export) ------------------------------------------------------
    def export_settings(self) -> dict[str, str]:
        """Settings of this panel worth printing beside its figures in a figure set's index, e.g.
        ``{"projection": "t-SNE"}``. The shared selection is recorded anyway."""
        return {}

    def contextMenuEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        """Right-click anywhere in a panel: Export view…, Copy image, Export data…, for the view
        under the mouse."""
        from ..export_menus import show_panel_menu

        if show_panel_menu(self, ev.globalPos(), self.childAt(ev.pos())):
            ev.accept()
        else:
            super().contextMenuEvent(ev)

    def showEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        """Give the panel's plots the same Export view… / Copy image entries in their own menus."""
        from ..export_menus import install_scene_menus
        from ._attn_style import steady_axes

        # on every show, so plots built since the last one get them too; both skip what they have
        # already changed, and take under 0.1 ms on the busiest panel
        install_scene_menus(self)
        steady_axes(self)
        super().showEvent(ev)


class Caption(QWidget):
    """A one-line caption saying what a view shows, with a "?" button that explains it to learners."""

    def __init__(self, text: str, help_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        self.label = WrappedText(text)
        self.label.setToolTip(help_text)
        self.help_text = help_text
        self.help_button = QToolButton()
        self.help_button.setText("?")
        self.help_button.setToolTip(help_text)
        self.help_button.setAutoRaise(True)
        self.help_button.clicked.connect(self._show_help)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.help_button, 0, Qt.AlignmentFlag.AlignRight)

    def set_text(self, text: str) -> None:
        self.label.setText(text)

    def _show_help(self) -> None:
        QWhatsThis.showText(self.help_button.mapToGlobal(self.help_button.rect().bottomLeft()),
                            self.help_text, self.help_button)
