"""The embedding panel's t-SNE runner: ``TsneWorker`` (a child process) seen through Qt signals.

One job at a time. ``request(key, X, ...)`` starts a job unless one is running (then it returns
False and starts nothing). Results are stored in the projection cache under ``key`` before
``finished`` is emitted, so a new trace with the same weights finds them there and recomputes
nothing. Events arrive on the worker's background thread and are passed to the GUI thread
through a queued signal.
"""
from __future__ import annotations

import atexit
import weakref

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

from ...core.projection import CACHE, ProjectionCache, TsneEvent, TsneWorker

_live: "weakref.WeakSet[TsneRunner]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # no orphaned child processes when the application quits
    for r in list(_live):
        r.close()


class TsneRunner(QObject):
    progress = Signal(int, int, str)  # iteration (-1: phase only), total, message
    finished = Signal(object, object, float)  # key, (N, 2) coords, seconds
    failed = Signal(object, str)  # key, message
    cancelled = Signal(object)  # key
    _event = Signal(object)

    def __init__(self, cache: ProjectionCache = CACHE, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.worker: TsneWorker | None = None
        self._keys: dict[int, object] = {}
        self.running_key: object | None = None
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        _live.add(self)

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.busy

    @property
    def jobs_started(self) -> int:
        return 0 if self.worker is None else self.worker.jobs_started

    def request(self, key, X, *, perplexity: float, max_iter: int, seed: int = 0) -> bool:
        """Start a t-SNE for ``key`` unless one is running. ValueError for impossible settings."""
        if self.busy:
            return False
        if self.worker is None:
            self.worker = TsneWorker(self._event.emit)
        job = self.worker.submit(np.asarray(X), perplexity=perplexity, max_iter=max_iter, seed=seed)
        if job is None:
            return False
        self._keys[job] = key
        self.running_key = key
        return True

    def prewarm(self) -> None:
        """Start the worker process in the background before the first request."""
        if self.worker is None:
            self.worker = TsneWorker(self._event.emit)
        self.worker.prewarm()

    def cancel(self) -> bool:
        return self.worker is not None and self.worker.cancel()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def _on_event(self, ev: TsneEvent) -> None:
        key = self._keys.get(ev.job)
        if ev.kind == "progress":
            self.progress.emit(ev.iteration, ev.total, ev.message)
            return
        self._keys.pop(ev.job, None)
        if key == self.running_key:
            self.running_key = None
        if ev.kind == "done" and ev.result is not None:
            self.cache.put(key, ev.result)
            self.finished.emit(key, ev.result, ev.elapsed_s)
        elif ev.kind == "cancelled":
            self.cancelled.emit(key)
        else:
            self.failed.emit(key, ev.message)
