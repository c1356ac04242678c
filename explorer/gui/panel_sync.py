"""Hands the controller's current trace and selection to the panels, one panel per turn of the
event loop, and only to panels the user can see.

* **One panel per turn:** between two panels the event loop runs, so key presses, timers and
  paints are handled while the views catch up. The GUI never blocks for the sum of all panels,
  only for the slowest one.
* **Only the newest:** a panel is always given the controller's *current* trace and selection, so
  if a newer trace arrives while the panels are catching up, no panel renders the old one.
* **Only visible panels:** a closed dock or a dock in a background tab is skipped; it gets the
  current trace the moment it is shown again.

``panelsSynced`` is emitted each time every visible panel shows the current trace and selection.
A panel that raises is reported once on the status bar and does not stop the others.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)


class PanelSync(QObject):
    panelsSynced = Signal()
    panelFailed = Signal(str, str)  # panel name, message

    def __init__(self, controller, panels: dict, docks: dict, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.panels = panels  # name → Panel (the window's dict, shared)
        self.docks = docks  # name → QDockWidget
        self.delivered: dict[str, tuple] = {}  # name → (trace, selection) it shows
        self._scheduled = False

    def watch(self, name: str) -> None:
        """Start following panel ``name``: catch it up whenever its dock is shown."""
        self.delivered.pop(name, None)
        self.docks[name].visibilityChanged.connect(lambda visible: visible and self.request())
        self.request()

    def request(self) -> None:
        """Something changed: catch the panels up, starting at the next turn of the event loop."""
        if not self._scheduled:
            self._scheduled = True
            QTimer.singleShot(0, self._step)

    def shown(self, name: str) -> bool:
        """Whether the user can see the panel: its dock is open and, when it shares a tab group,
        its tab is the current one (a background tab has an empty visible region). While the whole
        window is minimised or not yet shown, every open dock counts as shown."""
        dock = self.docks.get(name)
        if dock is None or not dock.isVisible():
            return False
        window = dock.window()
        if window is not dock and (not window.isVisible() or window.isMinimized()):
            return True
        return not dock.visibleRegion().isEmpty()

    def is_synced(self) -> bool:
        return not self._scheduled and not self._behind()

    def _behind(self) -> list[str]:
        want = (self.controller.trace, self.controller.selection)
        return [n for n in self.panels if self.shown(n) and self.delivered.get(n) != want]

    def _step(self) -> None:
        self._scheduled = False
        trace, sel = self.controller.trace, self.controller.selection
        behind = self._behind()
        if not behind:
            self.panelsSynced.emit()
            return
        name = behind[0]
        panel = self.panels[name]
        had = self.delivered.get(name, (None, None))
        self.delivered[name] = (trace, sel)
        try:
            if trace is not None and had[0] is not trace:
                if had[1] != sel:
                    panel.selection = sel  # so the new trace is drawn with the selection made for it
                panel.set_trace(trace)
                if had[1] != sel:
                    panel.set_selection(sel)  # and the panel's own controls follow it
            elif had[1] != sel:
                panel.set_selection(sel)
        except Exception as e:  # one broken view must not stop the others
            log.exception("panel %s failed", name)
            self.panelFailed.emit(name, f"{type(e).__name__}: {e}")
        self.request()
