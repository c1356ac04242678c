"""The two background threads of the app: ``TraceWorker`` (inference) and ``TrainWorker`` (training).

``TraceWorker`` is the only owner of the inference copy of the model. It lives in its own
``QThread`` and is driven by queued signals from the controller:

* ``load(LoadRequest)``: import torch (the first time), load a checkpoint, describe its
  architecture, emit ``modelLoaded(ModelInfo)``; on failure emit ``loadFailed(LoadFailure)`` and
  keep the model it had;
* ``trace(TraceRequest)``: skip the request when a newer one was announced (``note_newest``), so a
  burst of keystrokes costs one forward pass; otherwise trace and emit ``traceReady(trace)`` with
  the request's generation number;
* ``apply_snapshot(SnapshotRequest)``: swap training weights into its copy, then re-trace;
* ``adopt(AdoptRequest)``: take over a model built elsewhere (the one a training run starts from);
* ``save(path)``: write the native format.

Nothing here imports torch at module level: the app imports this module before torch is loaded.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)


def trace_threads() -> int:
    """Intra-op threads for the trace thread: 1 by default (``GPT_EXPLORER_TRACE_THREADS``). A
    small model's forward pass gains little from more, and the GUI thread (painting) and a
    training run need the other cores; with torch's OpenMP pool, thread counts are per thread."""
    try:
        return max(1, int(os.environ.get("GPT_EXPLORER_TRACE_THREADS", "1")))
    except ValueError:
        return 1


def train_threads() -> int:
    """Intra-op threads for a training run: every core but one, left for the GUI and the traces."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class TraceRequest:
    gen: int
    text: str


@dataclass(frozen=True)
class LoadRequest:
    path: str | None  # None: the bundled default model
    corpus: str | None = None
    meta: str | None = None


@dataclass(frozen=True)
class SnapshotRequest:
    gen: int
    text: str
    state: Any  # {name: tensor}, detached copies
    label: str = ""  # e.g. "step 1200"


@dataclass(frozen=True)
class AdoptRequest:
    model: Any  # an ExplorerModel nobody else will trace
    gen: int
    text: str


@dataclass(frozen=True)
class LoadFailure:
    request: LoadRequest
    path: str
    problem: str
    needs: str | None = None  # "corpus" | "meta" when only the vocabulary file is missing


@dataclass
class ModelInfo:
    """Plain data about the loaded model, made in the worker thread for the GUI.

    ``model`` is the worker's model object. The GUI thread never traces it; it may only copy its
    weights (``state_snapshot`` takes the model's lock), e.g. to fine-tune it.
    """

    name: str
    source: str | None
    config: Any  # GPTConfig
    vocab: tuple[str, ...]
    n_params: int
    architecture: dict
    info: dict = field(default_factory=dict)
    model: Any = None
    warnings: list[str] = field(default_factory=list)  # what the loader assumed (shown to the user)

    @property
    def family(self) -> str:
        return self.config.family


def describe_model(model, source: str | None = None) -> ModelInfo:
    from ..core.architecture import describe

    return ModelInfo(name=model.name, source=source if source is not None else model.source,
                     config=model.config, vocab=tuple(model.vocab), n_params=model.n_params,
                     architecture=describe(model.module), info=dict(model.info), model=model)


def warm_up() -> None:
    """Import the heavy libraries (torch, the core, pyqtgraph) off the GUI thread."""
    import pyqtgraph  # noqa: F401  (no widgets are made at import time)
    import torch  # noqa: F401

    from .. import core  # noqa: F401
    from ..core import architecture, checkpoints, stats, trace  # noqa: F401


class TraceWorker(QObject):
    """Owns the inference model; lives in the trace thread. See the module docstring."""

    warmedUp = Signal(float)  # seconds the imports took
    modelLoaded = Signal(object)  # ModelInfo
    loadFailed = Signal(object)  # LoadFailure
    traceReady = Signal(object)  # Trace, with .gen set
    traceFailed = Signal(int, str)  # gen, message
    saved = Signal(str)
    saveFailed = Signal(str, str)  # path, message

    def __init__(self) -> None:
        super().__init__()
        self.model = None
        self._newest = 0
        self._pending: TraceRequest | None = None
        self._warm = False
        self.n_traced = 0  # forward passes run (for tests and the benchmark)
        self.n_skipped = 0  # stale requests skipped without a forward pass

    # ---- called from the GUI thread -----------------------------------------------------------
    def note_newest(self, gen: int) -> None:
        """Announce the newest generation before its request is queued (an int store: thread-safe)."""
        if gen > self._newest:
            self._newest = gen

    # ---- slots, run in the worker thread ----------------------------------------------------------
    @Slot()
    def warm(self) -> None:
        if self._warm:
            return
        t0 = time.perf_counter()
        warm_up()
        import torch

        torch.set_num_threads(trace_threads())  # this thread's OpenMP team only
        self._warm = True
        self.warmedUp.emit(time.perf_counter() - t0)

    @Slot(object)
    def load(self, req: LoadRequest) -> None:
        self.warm()
        from ..core.checkpoints import CheckpointError, default_model_path, load

        path = req.path if req.path is not None else str(default_model_path())
        try:
            with warnings.catch_warnings(record=True) as caught:  # e.g. "assuming the Tiny Shakespeare alphabet"
                warnings.simplefilter("always")
                model = load(req.path, corpus=req.corpus, meta=req.meta)
            info = describe_model(model)
            info.warnings = [str(w.message) for w in caught]
        except CheckpointError as e:
            self.loadFailed.emit(LoadFailure(req, e.path or path, e.problem, e.needs))
            return
        except Exception as e:  # anything else a broken file can provoke: say so, keep the old model
            log.exception("loading %s failed", path)
            self.loadFailed.emit(LoadFailure(req, path, f"{type(e).__name__}: {e}"))
            return
        self.model = model
        self.modelLoaded.emit(info)
        self._trace_pending()

    @Slot(object)
    def adopt(self, req: AdoptRequest) -> None:
        self.warm()
        self.model = req.model
        self.modelLoaded.emit(describe_model(req.model))
        self.trace(TraceRequest(req.gen, req.text))

    @Slot(object)
    def trace(self, req: TraceRequest) -> None:
        if req.gen < self._newest:
            self.n_skipped += 1
            return
        if self.model is None:
            self._pending = req
            return
        self._pending = None
        try:
            trace = self.model.trace(req.text)
        except Exception as e:
            log.error("trace failed: %s", traceback.format_exc())
            self.traceFailed.emit(req.gen, f"{type(e).__name__}: {e}")
            return
        self.n_traced += 1
        self.traceReady.emit(trace.with_gen(req.gen))

    @Slot(object)
    def apply_snapshot(self, req: SnapshotRequest) -> None:
        if self.model is None:
            return
        try:
            self.model.load_snapshot(req.state)
        except Exception as e:  # shapes changed under us: report, keep the weights we had
            self.traceFailed.emit(req.gen, f"could not apply the training snapshot: {e}")
            return
        self.trace(TraceRequest(req.gen, req.text))

    @Slot(str)
    def save(self, path: str) -> None:
        if self.model is None:
            self.saveFailed.emit(path, "no model is loaded")
            return
        from ..core.checkpoints import CheckpointError

        try:
            out = self.model.save(Path(path))
        except CheckpointError as e:
            self.saveFailed.emit(path, e.problem)
            return
        except Exception as e:
            self.saveFailed.emit(path, f"{type(e).__name__}: {e}")
            return
        self.saved.emit(str(out))

    def _trace_pending(self) -> None:
        if self._pending is not None:
            self.trace(self._pending)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainJob:
    """What the Train dialog asks for. ``init_model`` set: fine-tune that model; else from scratch."""

    corpus: str
    out: str
    train_config: Any  # explorer.core.training.TrainConfig
    model_config: Any = None  # GPTConfig (from scratch; its vocab_size is set from the corpus)
    init_model: Any = None  # ExplorerModel to start from (its weights are copied)
    preset: str = "custom"
    threads: int = field(default_factory=train_threads)  # torch intra-op threads of the training thread
    snapshot_interval_s: float = 3.0  # how often the traced model gets the training weights
    progress_interval_s: float = 0.1  # how often progress reaches the GUI (at most)


@dataclass
class TrainProgress:
    """Throttled progress: the latest event plus every step loss since the previous one."""

    event: Any  # TrainEvent
    steps: list[int]
    losses: list[float]


class TrainWorker(QThread):
    """Runs ``explorer.core.training.Trainer`` in its own thread.

    Signals (queued to the GUI): ``ready(model)`` with a separate inference copy of the model being
    trained (the controller hands it to the trace worker), ``progress(TrainProgress)`` at most every
    ``progress_interval_s``, ``evaluated(TrainEvent)``, ``snapshotReady(state, label)`` every
    ``snapshot_interval_s`` and at the end, ``checkpointSaved(path)``, ``pausedChanged(bool)``,
    ``saveFailed(str)``, ``failed(str)`` when the run cannot start, and ``done(TrainResult)``.
    Control from the GUI thread: ``pause()``, ``resume()``, ``stop(save=True)``, ``save_now()``.
    """

    ready = Signal(object)
    progress = Signal(object)
    evaluated = Signal(object)
    snapshotReady = Signal(object, str)
    checkpointSaved = Signal(str)
    pausedChanged = Signal(bool)
    saveFailed = Signal(str)
    failed = Signal(str)
    done = Signal(object)

    def __init__(self, job: TrainJob, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TrainWorker")
        self.job = job
        self.trainer = None
        self.result = None
        self._stop_requested = False
        self._save_on_stop = True
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._last_progress = 0.0
        self._last_snapshot = 0.0
        self._savers: list = []

    # ---- control (GUI thread) -----------------------------------------------------------------
    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()

    @property
    def paused(self) -> bool:
        return self.trainer is not None and self.trainer.paused

    def stop(self, save: bool = True) -> None:
        """Stop after the current step. ``save=False`` skips the final save (the last checkpoint
        written at an evaluation stays on disk as it was)."""
        self._stop_requested = True
        self._save_on_stop = save
        if self.trainer is not None:
            self.trainer.request_stop(save=save)

    def save_now(self) -> None:
        """Write a checkpoint to the output path now, from a short helper thread (the trainer's lock
        makes the copy consistent even while it trains or is paused)."""
        trainer = self.trainer
        if trainer is None:
            return

        def save() -> None:
            try:
                path = trainer.save(self.job.out)
            except Exception as e:
                self.saveFailed.emit(f"{self.job.out}: {e}")
                return
            self.checkpointSaved.emit(str(path))

        t = threading.Thread(target=save, name="save-now", daemon=False)
        self._savers.append(t)
        t.start()

    def join_savers(self) -> None:
        for t in self._savers:
            t.join()
        self._savers.clear()

    # ---- the thread ---------------------------------------------------------------------------
    def run(self) -> None:  # runs in the training thread
        import torch

        torch.set_num_threads(self.job.threads)  # this thread's OpenMP team only
        try:
            self.trainer = self._make_trainer()
        except Exception as e:
            log.info("training could not start: %s", e)
            self.failed.emit(str(e))
            return
        if self._stop_requested:  # stopped before it began: run() returns at once
            self.trainer.request_stop(save=self._save_on_stop)
        out = Path(self.job.out)
        self.ready.emit(self.trainer.explorer_model(name=f"training: {out.stem}"))
        try:
            self.result = self.trainer.run(self._on_event)
        except Exception as e:
            log.exception("training failed")
            self.failed.emit(f"training stopped by an error at step {self.trainer.step}: {type(e).__name__}: {e}")
            return
        finally:
            self.join_savers()
        self._flush_progress(None)
        self.snapshotReady.emit(self.trainer.snapshot(), f"step {self.trainer.step}")
        self.done.emit(self.result)

    def _make_trainer(self):
        from ..core.training import Trainer

        job = self.job
        Path(job.out).parent.mkdir(parents=True, exist_ok=True)
        if job.init_model is not None:
            return Trainer(job.corpus, job.train_config, model=job.init_model, model_config=job.model_config,
                           out=job.out, info={"preset": job.preset})
        return Trainer(job.corpus, job.train_config, model_config=job.model_config, out=job.out,
                       info={"preset": job.preset})

    def _on_event(self, ev) -> None:  # called by Trainer.run, in the training thread
        now = time.monotonic()
        if ev.kind == "step":
            self._steps.append(ev.step)
            self._losses.append(ev.loss)
            if now - self._last_progress >= self.job.progress_interval_s:
                self._flush_progress(ev)
            if now - self._last_snapshot >= self.job.snapshot_interval_s:
                self._last_snapshot = now
                self.snapshotReady.emit(self.trainer.snapshot(), f"step {ev.step}")
            return
        self._flush_progress(ev)
        if ev.kind == "eval":
            self.evaluated.emit(ev)
        elif ev.kind == "checkpoint":
            self.checkpointSaved.emit(ev.path)
        elif ev.kind in ("paused", "resumed"):
            self.pausedChanged.emit(ev.kind == "paused")

    def _flush_progress(self, ev) -> None:
        ev = ev if ev is not None else getattr(self, "_last_event", None)
        if ev is None:
            return
        self._last_event = ev
        self.progress.emit(TrainProgress(ev, self._steps, self._losses))
        self._steps, self._losses = [], []
        self._last_progress = time.monotonic()
