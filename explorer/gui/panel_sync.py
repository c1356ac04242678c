"""Hands the controller's current trace and selection to the panels.

* **Traces, a frame's worth of panels per turn of the event loop:** panels are served until 16 ms
  (``budget_ms``) have been used, then the event loop runs (key presses, timers, paints) before
  the next ones. Fast panels are all served at once; slow ones never block the GUI for their sum,
  only for about the slowest one.
* **Only the newest:** a panel is always given the controller's *current* trace, so if a newer
  trace arrives while the panels are catching up, no panel renders the old one.
* **Visible panels first, painted first:** panels the user can see are served before closed docks
  and background tabs. Those are served too (so exports and a tab switch always find the current
  trace), but from an idle-time timer, after the visible panels have repainted: a background tab
  never delays what the user is looking at.
* **Selections at once:** a selection change (a click) reaches every panel showing the current
  trace immediately. A panel still showing an older trace gets the selection together with the
  new trace, so no panel ever draws a trace with a selection made for another model.

``panelsSynced`` is emitted each time every panel shows the current trace and selection. A panel
that raises is reported (``panelFailed``) and does not stop the others.
"""
from __future__ import annotations

import logging
import os
import time

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
        # panels served in one turn of the event loop until this much time is used (one frame)
        self.budget_ms = float(os.environ.get("GPT_EXPLORER_SYNC_BUDGET_MS", "16"))
        self._scheduled = False
        # background panels are served when the event loop is idle: a zero-interval QTimer object
        # runs after pending events (the visible panels' layout and paint), unlike a posted call
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(0)
        self._idle.timeout.connect(self._step)

    def watch(self, name: str) -> None:
        """Start following panel ``name``: catch it up whenever its dock is shown."""
        self.delivered.pop(name, None)
        self.docks[name].visibilityChanged.connect(lambda visible: visible and self.request())
        self.request()

    def request(self) -> None:
        """Something changed: catch the panels up, starting at the next turn of the event loop."""
        if not self._scheduled:
            self._scheduled = True
            QTimer.singleShot(0, self, self._step)  # cancelled if this object is deleted first

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
        return not self._scheduled and not self._idle.isActive() and not self._behind()

    def _behind(self) -> list[str]:
        """Panels not showing the current trace and selection, visible ones first."""
        want = (self.controller.trace, self.controller.selection)
        behind = [n for n in self.panels if self.delivered.get(n) != want]
        return sorted(behind, key=lambda n: not self.shown(n))

    def deliver_selection(self) -> None:
        """Give the current selection now to every panel that shows the current trace."""
        trace, sel = self.controller.trace, self.controller.selection
        for name in sorted(self.panels, key=lambda n: not self.shown(n)):
            had = self.delivered.get(name)
            if had is None or had[0] is not trace or had[1] == sel:
                continue  # not caught up with the trace yet: the trace step brings the selection too
            self.delivered[name] = (trace, sel)
            try:
                self.panels[name].set_selection(sel)
            except Exception as e:
                log.exception("panel %s failed on a selection", name)
                self.panelFailed.emit(name, f"{type(e).__name__}: {e}")
        self.request()

    def _step(self) -> None:
        self._scheduled = False
        self._idle.stop()
        start = time.perf_counter()
        served_shown = False
        while True:
            behind = self._behind()
            if not behind:
                self.panelsSynced.emit()
                return
            if not self.shown(behind[0]):
                if served_shown:  # let the visible panels paint before the background ones are served
                    self._idle.start()
                    return
            else:
                served_shown = True
            self._serve(behind[0])
            if (time.perf_counter() - start) * 1000 >= self.budget_ms:
                break  # let the event loop run before the next panel
        self.request()

    def _serve(self, name: str) -> None:
        trace, sel = self.controller.trace, self.controller.selection
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
