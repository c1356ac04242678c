"""The app's controller: owns the current model info, the shared ``Selection`` and the current
``Trace``, and the one trace thread.

Data flow (one way):

1. ``set_text(text)`` bumps ``gen`` and queues ``TraceRequest(gen, text)`` to the ``TraceWorker``
   (announcing ``gen`` first, so the worker skips anything older still in its queue);
2. the worker emits ``traceReady(trace)``; a result whose ``gen`` is not the current one is
   dropped; otherwise it is stored and broadcast with ``traceChanged(trace)``;
3. ``select(**changes)`` validates the changes against the model, emits ``selectionChanged`` and
   never runs the model.

Loading, saving and training snapshots also go through the worker, so the GUI thread never runs a
forward pass and never waits for torch.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, QThread, Signal

from .selection import EMBED, Selection
from .workers import (AdoptRequest, LoadFailure, LoadRequest, ModelInfo, SnapshotRequest, TraceRequest,
                      TraceWorker)

log = logging.getLogger(__name__)

SELECTION_KEYS = ("layer", "ln_site", "head", "position")


def _ln_sites(n_layer: int) -> list[str]:
    # the same list as explorer.core.trace.ln_sites, without importing torch into the GUI thread early
    return [f"blocks.{i}.{ln}" for i in range(n_layer) for ln in ("ln1", "ln2")] + ["ln_final"]


def _site_layer(site: str, n_layer: int) -> int:
    return n_layer if site == "ln_final" else int(site.split(".")[1])


class Controller(QObject):
    traceChanged = Signal(object)  # Trace
    selectionChanged = Signal(object)  # Selection
    modelChanged = Signal(object)  # ModelInfo
    modelLoadFailed = Signal(object)  # LoadFailure
    loadingChanged = Signal(bool, str)  # busy, what is being loaded
    traceFailed = Signal(str)
    modelSaved = Signal(str)
    modelSaveFailed = Signal(str, str)  # path, problem
    warmedUp = Signal(float)  # torch & co. imported (seconds)

    # to the worker thread (queued)
    _warmRequested = Signal()
    _traceRequested = Signal(object)
    _loadRequested = Signal(object)
    _snapshotRequested = Signal(object)
    _adoptRequested = Signal(object)
    _saveRequested = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gen = 0
        self.text = ""
        self.trace = None
        self.selection = Selection()
        self.model_info: ModelInfo | None = None
        self.loading = False
        self.n_dropped = 0  # results dropped because a newer edit was made meanwhile
        self._pending_selection: Selection | None = None
        self._closed = False

        self.thread = QThread()
        self.thread.setObjectName("TraceWorker")
        self.worker = TraceWorker()
        self.worker.moveToThread(self.thread)
        q = Qt.ConnectionType.QueuedConnection
        self._warmRequested.connect(self.worker.warm, q)
        self._traceRequested.connect(self.worker.trace, q)
        self._loadRequested.connect(self.worker.load, q)
        self._snapshotRequested.connect(self.worker.apply_snapshot, q)
        self._adoptRequested.connect(self.worker.adopt, q)
        self._saveRequested.connect(self.worker.save, q)
        self.worker.traceReady.connect(self._on_trace_ready, q)
        self.worker.traceFailed.connect(self._on_trace_failed, q)
        self.worker.modelLoaded.connect(self._on_model_loaded, q)
        self.worker.loadFailed.connect(self._on_load_failed, q)
        self.worker.saved.connect(self.modelSaved, q)
        self.worker.saveFailed.connect(self.modelSaveFailed, q)
        self.worker.warmedUp.connect(self.warmedUp, q)
        self.thread.finished.connect(self.worker.deleteLater)
        self.thread.start()

    # ---- prompt and traces -----------------------------------------------------------------
    def set_text(self, text: str) -> None:
        """A new prompt: request a trace of it (older requests and results become stale)."""
        self.text = text
        self._request_trace()

    def _next_gen(self) -> int:
        self.gen += 1
        self.worker.note_newest(self.gen)
        return self.gen

    def _request_trace(self) -> None:
        if self._closed:
            return
        self._traceRequested.emit(TraceRequest(self._next_gen(), self.text))

    def _on_trace_ready(self, trace) -> None:
        if trace.gen != self.gen:
            self.n_dropped += 1
            return
        self.trace = trace
        pending, self._pending_selection = self._pending_selection, None
        if pending is not None:
            self.selection = pending  # the window gives it to each view before the trace
        self.traceChanged.emit(trace)
        if pending is not None:
            self.selectionChanged.emit(pending)

    def _on_trace_failed(self, gen: int, message: str) -> None:
        if gen == self.gen:
            self.traceFailed.emit(message)

    @property
    def last_trace_ms(self) -> float | None:
        return None if self.trace is None else self.trace.elapsed_ms

    # ---- selection ----------------------------------------------------------------------------
    def select(self, **changes) -> Selection:
        """Change the shared selection (keys: layer, ln_site, head, position). Values are checked
        against the loaded model and clamped into range; the layer and the LayerNorm site move
        together. Emits ``selectionChanged`` when something changed. Never runs the model."""
        unknown = set(changes) - set(SELECTION_KEYS)
        if unknown:
            raise ValueError(f"unknown selection keys: {sorted(unknown)}")
        new = self._validated(self.selection, changes)
        if new != self.selection:
            self.selection = new
            self.selectionChanged.emit(new)
        return self.selection

    def _validated(self, sel: Selection, changes: dict) -> Selection:
        cfg = self.model_info.config if self.model_info is not None else None
        if cfg is None:
            return sel.with_changes(**changes)
        L, H = cfg.n_layer, cfg.n_head
        sites = _ln_sites(L)
        out = dict(changes)
        if "layer" in out:
            out["layer"] = max(EMBED, min(int(out["layer"]), L))
        if "head" in out:
            out["head"] = max(0, min(int(out["head"]), H - 1))
        if "ln_site" in out and out["ln_site"] not in sites:
            log.warning("ignoring unknown LayerNorm site %r", out["ln_site"])
            del out["ln_site"]
        if "ln_site" in out and "layer" not in out:
            out["layer"] = _site_layer(out["ln_site"], L)
        elif "layer" in out and "ln_site" not in out:
            out["ln_site"] = self._site_for_layer(out["layer"], sel.ln_site, L)
        if "position" in out and out["position"] is not None:
            T = self.trace.T if self.trace is not None else 0
            out["position"] = max(0, min(int(out["position"]), T - 1)) if T else None
        return sel.with_changes(**out)

    @staticmethod
    def _site_for_layer(layer: int, current: str, L: int) -> str:
        if layer >= L:
            return "ln_final"
        kind = current.rsplit(".", 1)[-1] if current != "ln_final" else "ln1"
        return f"blocks.{max(0, layer)}.{kind if kind in ('ln1', 'ln2') else 'ln1'}"

    def step_layer(self, delta: int) -> None:
        self.select(layer=self.selection.layer + delta)

    def step_head(self, delta: int) -> None:
        if self.model_info is not None:
            H = self.model_info.config.n_head
            self.select(head=(self.selection.head + delta) % H)

    def step_position(self, delta: int) -> None:
        T = self.trace.T if self.trace is not None else 0
        if T == 0:
            return
        current = self.selection.resolved_position(T)
        self.select(position=max(0, min(T - 1, current + delta)))

    def _fit_selection(self, info: ModelInfo, old: ModelInfo | None) -> None:
        """Keep the selection meaningful for a new model: ln_f/lm_head stays ln_f/lm_head, and
        every value is clamped into the new model's range; the position follows the prompt's end."""
        cfg = info.config
        sel = self.selection
        layer = sel.layer
        if old is not None and layer >= old.config.n_layer:
            layer = cfg.n_layer
        layer = max(EMBED, min(layer, cfg.n_layer))
        site = sel.ln_site if sel.ln_site in _ln_sites(cfg.n_layer) else self._site_for_layer(
            layer, sel.ln_site, cfg.n_layer)
        new = Selection(layer=layer, ln_site=site, head=max(0, min(sel.head, cfg.n_head - 1)), position=None)
        # applied with the new model's first trace, so no view sees the old trace with a selection
        # made for the new model (or the other way round)
        self._pending_selection = new if new != sel else None

    # ---- models -------------------------------------------------------------------------------
    def warm(self) -> None:
        """Start importing torch in the worker thread (the window is already painted)."""
        self._warmRequested.emit()

    def open_model(self, path: str | None, corpus: str | None = None, meta: str | None = None) -> None:
        """Load a checkpoint in the worker. The current model keeps working until it succeeds."""
        self.loading = True
        self.loadingChanged.emit(True, path or "the bundled default model")
        self._loadRequested.emit(LoadRequest(path, corpus, meta))

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.loading = False
        old, self.model_info = self.model_info, info
        self._fit_selection(info, old)
        self.loadingChanged.emit(False, info.name)
        self.modelChanged.emit(info)
        self._request_trace()

    def _on_load_failed(self, failure: LoadFailure) -> None:
        self.loading = False
        self.loadingChanged.emit(False, "")
        self.modelLoadFailed.emit(failure)

    def adopt_model(self, model) -> None:
        """Trace ``model`` from now on (it is handed to the worker thread; don't trace it elsewhere)."""
        self._adoptRequested.emit(AdoptRequest(model, self._next_gen(), self.text))

    def apply_snapshot(self, state, label: str = "") -> None:
        """Swap training weights into the traced model and re-trace the current prompt."""
        if self._closed:
            return
        self._snapshotRequested.emit(SnapshotRequest(self._next_gen(), self.text, state, label))

    def save_model(self, path: str) -> None:
        self._saveRequested.emit(path)

    # ---- shutdown -----------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop the trace thread and wait for it (a trace in progress is finished first)."""
        self._closed = True
        if not self.thread.isRunning():
            return True
        self.thread.quit()
        return bool(self.thread.wait(timeout_ms))
