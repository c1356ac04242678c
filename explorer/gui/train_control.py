"""Runs training jobs for the main window: the Train dialog, the ``TrainWorker`` thread's life, and
the wiring between the worker, the Training panel and the controller.

* When a run starts, a separate inference copy of the model being trained is handed to the trace
  worker, so every view shows that model; every few seconds a weight snapshot follows and the
  current prompt is re-traced (the model being trained is never traced itself).
* When the run ends with a checkpoint, that file is opened as the loaded model; "Back to previous
  model" reopens the one loaded before.
* Closing the window during a run asks whether to save, stops the run and waits for its thread.
"""
from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from . import settings as st
from .workers import TrainJob, TrainWorker

log = logging.getLogger(__name__)


class TrainingControl(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.controller = window.controller
        self.worker: TrainWorker | None = None
        self.panel = None
        self.previous: str | None = None  # the model file loaded before the run
        self.closing = False
        self.n_snapshots = 0
        self.last_result = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def attach_panel(self, panel) -> None:
        self.panel = panel
        panel.pauseRequested.connect(self.pause)
        panel.resumeRequested.connect(self.resume)
        panel.stopRequested.connect(lambda: self.stop(save=True))
        panel.saveNowRequested.connect(self.save_now)
        panel.newRunRequested.connect(self.new_run)
        panel.restoreRequested.connect(self.restore_previous)

    # ---- starting -----------------------------------------------------------------------------
    def new_run(self) -> None:
        """Show the Train dialog and start the job it describes."""
        if self.running:
            self._show_panel()
            return
        if self.panel is None:
            self.window.statusBar().showMessage("The model is still loading; try again in a moment.", 5000)
            return
        from .train_dialog import TrainDialog

        corpus = st.settings().value("train/corpus", "") or ""
        dlg = TrainDialog(self.window, loaded=self.controller.model_info,
                          corpus=str(corpus) if Path(str(corpus)).is_file() else "")
        if dlg.exec() == TrainDialog.DialogCode.Accepted:
            job = dlg.job()
            st.settings().setValue("train/corpus", job.corpus)
            self.start(job)

    def start(self, job: TrainJob) -> TrainWorker:
        if self.running:
            raise RuntimeError("a training run is already going")
        info = self.controller.model_info
        if info is not None and info.source and not info.name.startswith("training:"):
            self.previous = info.source
        self.closing = False
        self.n_snapshots = 0
        self.last_result = None
        w = TrainWorker(job)
        q = Qt.ConnectionType.QueuedConnection
        w.ready.connect(self.controller.adopt_model, q)
        w.snapshotReady.connect(self._on_snapshot, q)
        w.checkpointSaved.connect(self._on_checkpoint, q)
        w.saveFailed.connect(lambda msg: self.window.error("Could not save the checkpoint", html.escape(msg)), q)
        w.failed.connect(self._on_failed, q)
        w.done.connect(self._on_done, q)
        w.finished.connect(self._on_thread_finished, q)
        if self.panel is not None:
            w.progress.connect(self.panel.on_progress, q)
            w.evaluated.connect(self.panel.on_eval, q)
            w.pausedChanged.connect(self.panel.set_paused, q)
            start = "fine-tuning " + info.name if job.init_model is not None and info is not None else "new model"
            self.panel.start(f"{start} ({job.preset}) on {Path(job.corpus).name} → {Path(job.out).name}",
                             job.train_config.max_iters)
        self.worker = w
        self._show_panel()
        self.window._update_actions()
        w.start()
        return w

    def _show_panel(self) -> None:
        dock = self.window.docks.get("dock_training")
        if dock is not None:
            dock.show()
            dock.raise_()

    # ---- control ------------------------------------------------------------------------------
    def pause(self) -> None:
        if self.worker is not None:
            self.worker.pause()

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.resume()

    def toggle_pause(self) -> None:
        if self.worker is not None:
            self.resume() if self.worker.paused else self.pause()

    def stop(self, save: bool = True) -> None:
        if self.worker is not None:
            self.worker.stop(save=save)

    def save_now(self) -> None:
        if self.worker is not None:
            self.worker.save_now()

    def restore_previous(self) -> None:
        if self.previous:
            self.window.open_path(self.previous)
        else:
            self.window.statusBar().showMessage("No model was loaded from a file before this run.", 5000)

    # ---- worker signals -----------------------------------------------------------------------
    def _on_snapshot(self, state, label: str) -> None:
        if self.closing:
            return
        self.n_snapshots += 1
        self.controller.apply_snapshot(state, label)

    def _on_checkpoint(self, path: str) -> None:
        if self.panel is not None:
            self.panel.on_checkpoint(path)
        self.window.statusBar().showMessage(f"Checkpoint saved: {path}", 5000)

    def _on_failed(self, message: str) -> None:
        if self.panel is not None:
            self.panel.on_finished("failed", message)
        if not self.closing:
            self.window.error("Training stopped", html.escape(message))

    def _on_done(self, result) -> None:
        self.last_result = result
        if self.panel is not None:
            self.panel.on_finished(result.status, result.message)
            self.panel.restore_button.setVisible(bool(self.previous))
        if self.closing:
            return
        if result.status == "diverged":
            QMessageBox.warning(self.window, "Training diverged", html.escape(result.message))
        elif result.path:
            self.window.open_path_after_training(result.path)

    def _on_thread_finished(self) -> None:
        w = self.worker
        if w is not None:
            w.wait()
            w.deleteLater()
        self.worker = None
        self.window._update_actions()
        self.window._refresh_recent()

    # ---- closing ------------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Ask whether to save a running job, stop it and wait for its thread. False: keep running."""
        w = self.worker
        if w is None:
            return True
        answer = QMessageBox.question(
            self.window, "Training is running",
            "A training run is still going. Save a checkpoint of the current weights before quitting?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        self.closing = True
        self.join(save=answer == QMessageBox.StandardButton.Save)
        return True

    def join(self, save: bool = True, timeout_s: float = 600.0) -> bool:
        """Stop the run (saving or not) and wait for its thread to end."""
        w = self.worker
        if w is None:
            return True
        self.window.statusBar().showMessage("Stopping training…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            w.stop(save=save)
            ok = w.wait(int(timeout_s * 1000))
            w.join_savers()
        finally:
            QApplication.restoreOverrideCursor()
        if not ok:
            log.error("the training thread did not stop within %.0f s", timeout_s)
            return False
        if self.worker is w:  # the queued 'finished' may not have been delivered yet
            self._on_thread_finished()
        return True
