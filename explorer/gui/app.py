"""Start the desktop app: ``python main.py [CHECKPOINT]`` / ``gpt-explorer [CHECKPOINT]``.

The window is shown and painted first, with a visible "loading model…" state; only then does the
trace worker import torch and load the model in its own thread. Until then nothing heavy has been
imported (``import explorer`` does not import torch).

Setting ``GPT_EXPLORER_STARTUP_TIMING=1`` prints, on stderr, the wall-clock times (``time.time()``)
of the first painted window and of the first paint after every panel has the first trace, for
the start-up benchmark; ``=quit`` also quits right after the first trace is painted.
"""
from __future__ import annotations

import logging
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QStyleFactory

from .settings import APP, ORG


class StartupProbe(QObject):
    """Notes the first paint of the window, and the first paint after every panel has been given
    the first trace."""

    def __init__(self, window, quit_after: bool) -> None:
        super().__init__(window)
        self.window = window
        self.quit_after = quit_after
        self.first_paint: float | None = None
        self.first_trace_paint: float | None = None
        self._traced = False
        window.sync.panelsSynced.connect(self._on_synced)
        QApplication.instance().installEventFilter(self)

    def _on_synced(self) -> None:
        if self.window.controller.trace is not None:
            self._traced = True

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint and hasattr(obj, "window") and obj.window() is self.window:
            if self.first_paint is None:
                self.first_paint = time.time()
                print(f"startup first_paint {self.first_paint:.6f}", file=sys.stderr, flush=True)
            elif self._traced and self.first_trace_paint is None:
                self.first_trace_paint = time.time()
                print(f"startup first_trace_paint {self.first_trace_paint:.6f}", file=sys.stderr, flush=True)
                QApplication.instance().removeEventFilter(self)
                if self.quit_after:
                    QTimer.singleShot(0, self.window.close)
        return False


def guard_pyside_none_refcount() -> bool:
    """PySide6 6.12.0 returns ``None`` from void Qt calls without taking a reference. From Python
    3.12 ``None`` is immortal and nothing happens; before that, every call lowers ``None``'s
    reference count and the process dies ("deallocating None") after a few thousand calls.
    pyproject.toml excludes that release; if it is installed anyway, give ``None`` enough
    references that it can never reach zero. Returns whether the guard was applied."""
    import ctypes

    import PySide6

    if sys.version_info >= (3, 12) or not PySide6.__version__.startswith("6.12.0"):
        return False
    logging.getLogger(__name__).warning(
        "PySide6 %s leaks references to None on Python %d.%d; install PySide6-Essentials 6.11.3 "
        "(pip install 'PySide6-Essentials!=6.12.0')", PySide6.__version__, *sys.version_info[:2])
    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 40
    return True


def make_app(argv: list[str] | None = None) -> QApplication:
    guard_pyside_none_refcount()
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setApplicationDisplayName(APP)
    if "fusion" in [k.lower() for k in QStyleFactory.keys()]:
        app.setStyle("Fusion")
    return app


def main(checkpoint: str | None = None, corpus: str | None = None, meta: str | None = None) -> int:
    logging.basicConfig(level=os.environ.get("GPT_EXPLORER_LOG", "WARNING").upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    app = make_app()
    from .main_window import MainWindow

    window = MainWindow()
    timing = os.environ.get("GPT_EXPLORER_STARTUP_TIMING", "")
    if timing:
        StartupProbe(window, quit_after=timing == "quit")
    window.show()
    app.processEvents()  # paint the window before torch is imported
    window.controller.warm()
    window.controller.open_model(checkpoint, corpus=corpus, meta=meta)
    app.aboutToQuit.connect(window.controller.shutdown)
    return int(app.exec())
