"""The contract every panel implements.

* ``set_trace(trace)``: render a new ``Trace`` by updating items built once (``setData`` /
  ``setImage``); never rebuild widgets per keystroke, never touch torch.
* ``set_selection(sel)``: re-render from the stored trace for a new ``Selection``.
* ``selectionRequested`` (signal, dict): ask the controller to change the shared selection, e.g.
  ``{"position": 3}`` or ``{"layer": 2, "head": 1}``.
* ``export_views()``: the figures this panel can export, as ``ExportView`` objects (a name, the
  QWidget or QGraphicsItem to render, and a title describing what is shown).
* ``export_data()``: the numbers behind the panel, ``{name: table_or_array}``: a ``Table`` for CSV
  and numpy arrays (or a dict of them) for NPZ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from ...core.trace import Trace
from ..selection import Selection


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
