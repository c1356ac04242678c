"""The Training panel: a running training job's progress, loss curves, latest sample and controls.

It shows a progress bar, the step, loss, learning rate, tokens/s, elapsed time and ETA; the
per-step training loss (light) with a running mean, and the evaluated train and val losses
(markers) in one pyqtgraph plot updated with ``setData`` only; the sample generated at the latest
evaluation; and Pause/Resume, Stop and Save now. It holds no thread and no torch: the main window
feeds it ``TrainWorker`` signals and turns its buttons' signals into worker calls.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QGridLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QSplitter, QVBoxLayout, QWidget)

from .. import theme
from .base import Caption, ExportView, Panel, Table

EMA = 0.95  # smoothing of the running-mean loss curve


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingPanel(Panel):
    title = "Training"
    help_text = ("Train a model and watch it learn: the loss curves fall, the sample turns from noise "
                 "into text, and every other view follows the weights live (they are re-traced every "
                 "few seconds). Train → Train… (Ctrl+T) starts a run.")

    pauseRequested = Signal()
    resumeRequested = Signal()
    stopRequested = Signal()
    saveNowRequested = Signal()
    newRunRequested = Signal()
    restoreRequested = Signal()  # go back to the model loaded before training

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.running = False
        self.paused = False
        self.max_iters = 1
        self.steps = np.zeros(0, np.int64)
        self.losses = np.zeros(0, np.float64)
        self.smooth = np.zeros(0, np.float64)
        self.eval_steps: list[int] = []
        self.eval_train: list[float] = []
        self.eval_val: list[float] = []
        self.last_checkpoint: str | None = None

        self.caption = Caption("No training run yet: Train → Train… (Ctrl+T)", self.help_text)
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m steps (%p%)")
        self.progress.setToolTip("Optimisation steps done out of max_iters.")

        grid = QGridLayout()
        self.stats: dict[str, QLabel] = {}
        tips = {"step": "Optimisation steps done.", "loss": "Cross-entropy of the latest training batch "
                "(ln 65 ≈ 4.17 is guessing uniformly among 65 characters).",
                "lr": "The learning rate of the latest step (warmup, then cosine decay).",
                "tokens/s": "Training throughput: characters processed per second.",
                "elapsed": "Training time so far.", "ETA": "Estimated time to max_iters, evaluations included.",
                "val loss": "Loss on the held-out last 10% of the corpus at the latest evaluation (best so far)."}
        for k, name in enumerate(["step", "loss", "lr", "tokens/s", "elapsed", "ETA", "val loss"]):
            key = QLabel(name + ":")
            val = QLabel("–")
            val.setObjectName(f"train_{name.replace('/', '_').replace(' ', '_')}")
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            key.setToolTip(tips[name])
            val.setToolTip(tips[name])
            self.stats[name] = val
            grid.addWidget(key, k // 2, 2 * (k % 2))  # two pairs a row: fits a narrow dock
            grid.addWidget(val, k // 2, 2 * (k % 2) + 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("lossPlot")
        self.plot.setBackground(theme.current().background)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss (cross-entropy)")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setToolTip("Training loss per step (light), its running mean, and the evaluated "
                             "train and val losses (markers).")
        self.plot.setMinimumHeight(140)
        blue, orange, green = theme.OKABE_ITO["blue"], theme.OKABE_ITO["orange"], theme.OKABE_ITO["vermillion"]
        self.curve_step = self.plot.plot([], [], pen=pg.mkPen(theme.OKABE_ITO["sky"], width=1), name="train (per step)")
        self.curve_smooth = self.plot.plot([], [], pen=pg.mkPen(blue, width=2), name="train (running mean)")
        self.curve_eval_train = self.plot.plot([], [], pen=pg.mkPen(orange, width=2), symbol="o", symbolSize=7,
                                               symbolBrush=orange, name="train (eval)")
        self.curve_eval_val = self.plot.plot([], [], pen=pg.mkPen(green, width=2), symbol="s", symbolSize=7,
                                             symbolBrush=green, name="val (eval)")
        self.curve_step.setDownsampling(auto=True, method="mean")
        self.curve_step.setClipToView(True)

        self.sample = QPlainTextEdit()
        self.sample.setObjectName("trainSample")
        self.sample.setReadOnly(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSize(theme.FONT_PT)
        self.sample.setFont(mono)
        self.sample.setPlaceholderText("Text the model generates at each evaluation appears here.")
        self.sample.setToolTip("A sample generated from a newline at the latest evaluation.")
        self.sample.setMinimumHeight(60)
        self.sample_label = QLabel("Latest sample")

        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause training after the current step (the views stay live).")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step and save a checkpoint.")
        self.save_button = QPushButton("Save now")
        self.save_button.setToolTip("Write a checkpoint of the current weights to the output file now.")
        self.new_button = QPushButton("New run…")
        self.new_button.setToolTip("Set up and start a training run (Ctrl+T).")
        self.restore_button = QPushButton("Back to previous model")
        self.restore_button.setToolTip("Reload the model that was open before this training run.")
        self.restore_button.hide()
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.stop_button.clicked.connect(self.stopRequested)
        self.save_button.clicked.connect(self.saveNowRequested)
        self.new_button.clicked.connect(self.newRunRequested)
        self.restore_button.clicked.connect(self.restoreRequested)
        buttons = QGridLayout()
        buttons.addWidget(self.pause_button, 0, 0)
        buttons.addWidget(self.stop_button, 0, 1)
        buttons.addWidget(self.save_button, 0, 2)
        buttons.addWidget(self.new_button, 1, 0)
        buttons.addWidget(self.restore_button, 1, 1, 1, 2)

        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.sample_label)
        lower_layout.addWidget(self.sample)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plot)
        split.addWidget(lower)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 4)
        layout.addWidget(self.caption)
        layout.addWidget(self.progress)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(split, 1)
        self._set_running(False)

    # ---- state ----------------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.running = running
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(running)
        self.new_button.setEnabled(not running)
        if not running:
            self.set_paused(False)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setToolTip("Continue training." if paused else
                                     "Pause training after the current step (the views stay live).")
        if self.running:
            self.caption.set_text(self._headline + (" · paused" if paused else ""))

    def _on_pause_clicked(self) -> None:
        (self.resumeRequested if self.paused else self.pauseRequested).emit()

    def start(self, description: str, max_iters: int, start_step: int = 0) -> None:
        """A new run: clear the curves and show what is being trained."""
        self.max_iters = max(1, int(max_iters))
        self.steps = np.zeros(0, np.int64)
        self.losses = np.zeros(0, np.float64)
        self.smooth = np.zeros(0, np.float64)
        self.eval_steps, self.eval_train, self.eval_val = [], [], []
        for c in (self.curve_step, self.curve_smooth, self.curve_eval_train, self.curve_eval_val):
            c.setData([], [])
        self.progress.setRange(0, self.max_iters)
        self.progress.setValue(start_step)
        for v in self.stats.values():
            v.setText("–")
        self.sample.setPlainText("")
        self.restore_button.hide()
        self._headline = f"Training: {description}"
        self.caption.set_text(self._headline + " · starting…")
        self._set_running(True)

    # ---- worker signals -------------------------------------------------------------------------
    def on_progress(self, p) -> None:
        ev = p.event
        if p.steps:
            steps = np.asarray(p.steps, np.int64)
            losses = np.asarray(p.losses, np.float64)
            prev = self.smooth[-1] if len(self.smooth) else losses[0]
            sm = np.empty_like(losses)
            for k, x in enumerate(losses):  # exponential running mean, continued across batches
                prev = EMA * prev + (1 - EMA) * x
                sm[k] = prev
            self.steps = np.concatenate([self.steps, steps])
            self.losses = np.concatenate([self.losses, losses])
            self.smooth = np.concatenate([self.smooth, sm])
            self.curve_step.setData(self.steps, self.losses)
            self.curve_smooth.setData(self.steps, self.smooth)
        self.progress.setValue(min(ev.step, self.max_iters))
        s = self.stats
        s["step"].setText(f"{ev.step:,} / {ev.max_iters:,}")
        s["loss"].setText(f"{ev.loss:.4f}" if ev.loss is not None else "–")
        s["lr"].setText(f"{ev.lr:.2e}" if ev.lr is not None else "–")
        s["tokens/s"].setText(f"{ev.tokens_per_s:,.0f}" if ev.tokens_per_s else "–")
        s["elapsed"].setText(fmt_duration(ev.elapsed_s))
        s["ETA"].setText(fmt_duration(ev.eta_s))
        if self.running and ev.kind in ("start", "step"):
            self.caption.set_text(self._headline + (" · paused" if self.paused else ""))

    def on_eval(self, ev) -> None:
        self.eval_steps.append(ev.step)
        self.eval_train.append(ev.train_loss)
        self.eval_val.append(ev.val_loss)
        self.curve_eval_train.setData(self.eval_steps, self.eval_train)
        self.curve_eval_val.setData(self.eval_steps, self.eval_val)
        best = f" (best {ev.best_val_loss:.4f})" if ev.best_val_loss is not None else ""
        self.stats["val loss"].setText(f"{ev.val_loss:.4f}{best}")
        if ev.sample is not None:
            self.sample_label.setText(f"Sample at step {ev.step:,} (train loss {ev.train_loss:.3f}, "
                                      f"val loss {ev.val_loss:.3f})")
            self.sample.setPlainText(ev.sample)

    def on_checkpoint(self, path: str) -> None:
        self.last_checkpoint = path
        self.save_button.setToolTip(f"Write a checkpoint to {path} now.\nLast saved: {path}")

    def on_finished(self, status: str, message: str) -> None:
        self._set_running(False)
        self.caption.set_text(f"{status.capitalize()}: {message}")
        self.restore_button.setVisible(status != "failed")

    # ---- Panel contract -------------------------------------------------------------------------
    def set_trace(self, trace) -> None:
        self.trace = trace  # the curves do not depend on the prompt

    def export_views(self) -> list[ExportView]:
        return [ExportView("training_loss", self.plot, "Training and validation loss")]

    def export_data(self) -> dict:
        steps = Table(["step", "loss", "running_mean"],
                      [[int(a), float(b), float(c)] for a, b, c in zip(self.steps, self.losses, self.smooth)])
        evals = Table(["step", "train_loss", "val_loss"],
                      [[a, b, c] for a, b, c in zip(self.eval_steps, self.eval_train, self.eval_val)])
        return {"training_steps": steps, "training_evals": evals}
