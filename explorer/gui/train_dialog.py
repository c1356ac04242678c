"""The Train dialog: corpus, preset and hyperparameters, from scratch or from the loaded model, and
the output file. ``job()`` returns the ``TrainJob`` the ``TrainWorker`` runs.

* **Corpus:** a UTF-8 text file (Browse…), or "Download Tiny Shakespeare", which fetches the
  char-rnn ``input.txt`` with the core's checked download in a background thread.
* **Preset:** small, lecture or tiny fill every field; editing a field makes it "custom". The
  parameter count is shown live.
* **Start from:** a new model, or the loaded model (fine-tuning: its shape is fixed and the corpus
  must be written in its alphabet).
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from . import theme
from .settings import last_dir, set_last_dir
from .workers import TrainJob

PRESET_NAMES = ("small", "lecture", "tiny")
MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")
TRAIN_FIELDS = ("batch_size", "max_iters", "lr", "min_lr", "warmup_iters", "eval_interval", "eval_iters",
                "grad_clip", "seed")
TIPS = {
    "n_layer": "Number of transformer blocks.",
    "n_head": "Attention heads per block; n_embd must be divisible by it.",
    "n_embd": "Width of every token's vector (the residual stream).",
    "block_size": "Context length: the most characters the model reads at once.",
    "dropout": "Fraction of activations zeroed during training, against overfitting.",
    "batch_size": "Windows of block_size characters per optimisation step.",
    "max_iters": "Optimisation steps in all.",
    "lr": "Peak learning rate of AdamW.",
    "min_lr": "Learning rate at the end of the cosine decay (= lr for a constant rate, as in the lecture).",
    "warmup_iters": "Steps over which the learning rate rises linearly from 0.",
    "eval_interval": "Estimate train/val loss, generate a sample and save a checkpoint every this many steps.",
    "eval_iters": "Batches averaged per loss estimate.",
    "grad_clip": "Clip the gradient norm to this (0 = no clipping).",
    "seed": "Random seed: the same seed and settings give the same run.",
}


def default_output(corpus: str, preset: str) -> str:
    folder = Path(last_dir("train_out", str(Path.home() / "gpt-explorer-runs")))
    stem = Path(corpus).stem if corpus else "model"
    return str(folder / f"{stem}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}.safetensors")


class TrainDialog(QDialog):
    downloadDone = Signal(str, str)  # path, error

    def __init__(self, parent: QWidget | None = None, *, loaded=None, corpus: str = "") -> None:
        """``loaded``: the ``ModelInfo`` of the loaded model (offers fine-tuning it), or None."""
        super().__init__(parent)
        from ..core.training import PRESETS

        self.presets = PRESETS
        self.loaded = loaded
        self._applying = False
        self.setWindowTitle("Train a model")
        self.setToolTip("")

        # corpus
        self.corpus_edit = QLineEdit(corpus)
        self.corpus_edit.setPlaceholderText("a UTF-8 text file, e.g. Tiny Shakespeare's input.txt")
        self.corpus_edit.setToolTip("The training text. The model learns to continue text like it; "
                                    "its vocabulary is the set of characters in it.")
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose a text file to train on.")
        browse.clicked.connect(self._browse_corpus)
        self.download_button = QPushButton("Download Tiny Shakespeare")
        self.download_button.setToolTip("Fetch the 1.1 MB char-rnn Tiny Shakespeare (needs a network "
                                        "connection); it is checked against its SHA-256 and cached.")
        self.download_button.clicked.connect(self._download)
        self.downloadDone.connect(self._on_download_done, Qt.ConnectionType.QueuedConnection)
        corpus_row = QHBoxLayout()
        corpus_row.addWidget(self.corpus_edit, 1)
        corpus_row.addWidget(browse)
        corpus_row.addWidget(self.download_button)

        # start from
        self.scratch_radio = QRadioButton("A new model (from scratch)")
        self.scratch_radio.setToolTip("Random initial weights with the shape below.")
        name = loaded.name if loaded is not None else "no model loaded"
        self.finetune_radio = QRadioButton(f"The loaded model ({name})")
        self.finetune_radio.setToolTip("Fine-tune the loaded model: its shape stays, the corpus must use "
                                       "its characters only.")
        self.finetune_radio.setEnabled(loaded is not None)
        group = QButtonGroup(self)
        group.addButton(self.scratch_radio)
        group.addButton(self.finetune_radio)
        self.scratch_radio.setChecked(True)
        self.scratch_radio.toggled.connect(self._update_enabled)

        # preset and hyperparameters
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(PRESET_NAMES) + ["custom"])
        self.preset_combo.setToolTip("small: ~0.8M parameters, minutes on a CPU. lecture: the lecture's "
                                     "10.8M-parameter model (slow on a CPU). tiny: seconds, to try things.")
        self.preset_combo.currentTextChanged.connect(self._apply_preset)
        self.family_combo = QComboBox()
        self.family_combo.addItems(["lecture", "nanogpt"])
        self.family_combo.setToolTip("lecture: ReLU, untied lm_head with bias. nanogpt: GELU, lm_head tied "
                                     "to the token embedding.")
        self.fields: dict[str, QSpinBox | QDoubleSpinBox] = {}
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("family", self.family_combo)
        for f in MODEL_FIELDS:
            model_form.addRow(f, self._make_field(f))
        train_box = QGroupBox("Training")
        train_grid = QGridLayout(train_box)
        for k, f in enumerate(TRAIN_FIELDS):
            train_grid.addWidget(QLabel(f), k % 5, 2 * (k // 5))
            train_grid.addWidget(self._make_field(f), k % 5, 2 * (k // 5) + 1)
        self.family_combo.currentTextChanged.connect(self._on_edited)
        self.params_label = QLabel()
        self.params_label.setToolTip("Parameters of the model to train (for a 65-character vocabulary "
                                     "until the corpus is read).")

        # output
        self.out_edit = QLineEdit()
        self.out_edit.setToolTip("Where checkpoints are written (at every evaluation and at the end), "
                                 "in the native .safetensors format.")
        out_browse = QPushButton("…")
        out_browse.setToolTip("Choose the output file.")
        out_browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(out_browse)

        self.error_label = QLabel()
        self.error_label.setObjectName("trainDialogError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {theme.OKABE_ITO['vermillion']}")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start training")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Corpus", corpus_row)
        start_col = QVBoxLayout()
        start_col.addWidget(self.scratch_radio)
        start_col.addWidget(self.finetune_radio)
        form.addRow("Start from", start_col)
        form.addRow("Preset", self.preset_combo)
        boxes = QHBoxLayout()
        boxes.addWidget(model_box)
        boxes.addWidget(train_box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(boxes)
        layout.addWidget(self.params_label)
        out_form = QFormLayout()
        out_form.addRow("Output file", out_row)
        layout.addLayout(out_form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self.preset_combo.setCurrentText("small")
        self._apply_preset("small")
        self.out_edit.setText(default_output(corpus, "small"))
        self._update_enabled()

    # ---- fields -------------------------------------------------------------------------------
    def _make_field(self, name: str):
        if name in ("dropout", "lr", "min_lr", "grad_clip"):
            w = QDoubleSpinBox()
            w.setDecimals(5 if name in ("lr", "min_lr") else 3)
            w.setRange(0.0, 0.95 if name == "dropout" else (1.0 if name != "grad_clip" else 100.0))
            w.setSingleStep(0.05 if name == "dropout" else (1e-4 if name in ("lr", "min_lr") else 0.1))
        else:
            w = QSpinBox()
            lo = 0 if name in ("warmup_iters", "seed") else 1
            hi = {"n_layer": 48, "n_head": 64, "n_embd": 4096, "block_size": 4096, "batch_size": 4096,
                  "max_iters": 10_000_000, "warmup_iters": 1_000_000, "eval_interval": 1_000_000,
                  "eval_iters": 100_000, "seed": 2**31 - 1}[name]
            w.setRange(lo, hi)
            w.setGroupSeparatorShown(name in ("max_iters",))
        w.setObjectName(f"field_{name}")
        w.setToolTip(TIPS[name])
        w.valueChanged.connect(self._on_edited)
        self.fields[name] = w
        return w

    def _apply_preset(self, name: str) -> None:
        if name not in self.presets:
            return
        model_kw, train_kw = self.presets[name]
        from ..core.training import TrainConfig

        train = TrainConfig(**train_kw)
        self._applying = True
        try:
            for f in MODEL_FIELDS:
                if f in model_kw and not (self.finetune_radio.isChecked() and f != "dropout"):
                    self.fields[f].setValue(model_kw[f])
            for f in TRAIN_FIELDS:
                self.fields[f].setValue(getattr(train, f))
        finally:
            self._applying = False
        self._update_params()

    def _on_edited(self, *_args) -> None:
        if not self._applying and self.preset_combo.currentText() != "custom":
            self._applying = True
            self.preset_combo.setCurrentText("custom")
            self._applying = False
        self._update_params()

    def _update_enabled(self) -> None:
        fine = self.finetune_radio.isChecked()
        for f in MODEL_FIELDS:
            if f != "dropout":
                self.fields[f].setEnabled(not fine)
        self.family_combo.setEnabled(not fine)
        if fine and self.loaded is not None:
            self._applying = True
            cfg = self.loaded.config
            for f in ("n_layer", "n_head", "n_embd", "block_size"):
                self.fields[f].setValue(getattr(cfg, f))
            self.family_combo.setCurrentText(cfg.family)
            self._applying = False
        self._update_params()

    def _model_config(self, vocab_size: int = 65):
        from ..core.model import GPTConfig

        kw = {f: self.fields[f].value() for f in MODEL_FIELDS}
        kw = {k: (int(v) if k != "dropout" else float(v)) for k, v in kw.items()}
        make = GPTConfig.nanogpt if self.family_combo.currentText() == "nanogpt" else GPTConfig.lecture
        return make(vocab_size=vocab_size, **kw)

    def _update_params(self) -> None:
        from ..core.model import count_params

        try:
            if self.finetune_radio.isChecked() and self.loaded is not None:
                n = self.loaded.n_params
            else:
                n = count_params(self._model_config())
        except ValueError as e:
            self.params_label.setText(f"<span style='color:{theme.OKABE_ITO['vermillion']}'>{e}</span>")
            return
        self.params_label.setText(f"<b>{n:,}</b> parameters ({n / 1e6:.2f}M)")

    # ---- files --------------------------------------------------------------------------------
    def _browse_corpus(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training text", last_dir("corpus"),
                                              "Text files (*.txt *.md *.text);;All files (*)")
        if path:
            set_last_dir("corpus", path)
            self.corpus_edit.setText(path)
            self.out_edit.setText(default_output(path, self.preset_combo.currentText()))

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoints as", self.out_edit.text(),
                                              "GPT Explorer model (*.safetensors)")
        if path:
            self.out_edit.setText(path)

    def _download(self) -> None:
        self.download_button.setEnabled(False)
        self.download_button.setText("Downloading…")
        self.error_label.setText("")

        def fetch() -> None:
            from ..core.data import DownloadError, download_tiny_shakespeare

            try:
                path, error = str(download_tiny_shakespeare()), ""
            except (DownloadError, OSError) as e:
                path, error = "", str(e)
            try:
                self.downloadDone.emit(path, error)
            except RuntimeError:  # the dialog was closed meanwhile: nothing to fill in
                pass

        threading.Thread(target=fetch, name="download", daemon=True).start()

    def _on_download_done(self, path: str, error: str) -> None:
        self.download_button.setEnabled(True)
        self.download_button.setText("Download Tiny Shakespeare")
        if error:
            self.error_label.setText(f"Download failed: {error}")
            return
        self.corpus_edit.setText(path)
        self.out_edit.setText(default_output(path, self.preset_combo.currentText()))

    # ---- result -------------------------------------------------------------------------------
    def validate(self) -> str:
        """An error message, or "" when the job can start."""
        corpus = Path(self.corpus_edit.text().strip()).expanduser()
        if not self.corpus_edit.text().strip():
            return "Choose a corpus: a UTF-8 text file to train on."
        if not corpus.is_file():
            return f"The corpus {corpus} does not exist or is not a file."
        out = self.out_edit.text().strip()
        if not out:
            return "Choose an output file."
        out_path = Path(out).expanduser()
        if out_path.is_dir():
            return f"The output {out_path} is a folder; give a file name."
        parent = out_path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            return f"Cannot create the folder of {out_path}."
        import os

        if not os.access(parent, os.W_OK):
            return f"The folder {parent} is not writable."
        try:
            self._model_config()
        except ValueError as e:
            return str(e)
        try:
            self._train_config()
        except ValueError as e:
            return str(e)
        return ""

    def _train_config(self):
        from ..core.training import TrainConfig

        kw = {f: self.fields[f].value() for f in TRAIN_FIELDS}
        for k in ("batch_size", "max_iters", "warmup_iters", "eval_interval", "eval_iters", "seed"):
            kw[k] = int(kw[k])
        cfg = TrainConfig(**kw)
        return replace(cfg, eval_interval=min(cfg.eval_interval, cfg.max_iters))

    def accept(self) -> None:
        err = self.validate()
        if err:
            self.error_label.setText(err)
            return
        set_last_dir("train_out", self.out_edit.text().strip())
        super().accept()

    def job(self) -> TrainJob:
        out = Path(self.out_edit.text().strip()).expanduser()
        if out.suffix != ".safetensors":
            out = out.with_name(out.name + ".safetensors")
        fine = self.finetune_radio.isChecked() and self.loaded is not None
        return TrainJob(corpus=str(Path(self.corpus_edit.text().strip()).expanduser()), out=str(out),
                        train_config=self._train_config(), model_config=self._model_config(),
                        init_model=self.loaded.model if fine else None, preset=self.preset_combo.currentText())
