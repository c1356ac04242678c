"""File handling of the main window: Open (dialog, drag and drop, Open Recent), the questions for a
checkpoint's vocabulary file, Save model as…, and the error messages that name the file and the
problem (the previously loaded model stays loaded). A mixin of ``MainWindow``."""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from . import settings as st

CHECKPOINT_FILTER = ("Checkpoints (*.safetensors *.pt *.pth *.bin *.ckpt);;"
                     "GPT Explorer (*.safetensors);;PyTorch (*.pt *.pth *.bin *.ckpt);;All files (*)")


class FileActionsMixin:
    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        files = st.recent_files()
        for path in files:
            a = self.recent_menu.addAction(Path(path).name)
            a.setToolTip(path)
            a.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", lambda: (st.clear_recent_files(), self._refresh_recent()))
        self.recent_menu.setEnabled(bool(files) and not self.training.running)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", st.last_dir("open"), CHECKPOINT_FILTER)
        if path:
            st.set_last_dir("open", path)
            self.open_path(path)

    def open_path(self, path: str, corpus: str | None = None, meta: str | None = None) -> None:
        if self.training.running:
            self.error("Training is running", "Stop the training run before opening another model.")
            return
        self.controller.open_model(str(path), corpus=corpus, meta=meta)

    def open_path_after_training(self, path: str) -> None:
        """The finished run's checkpoint becomes the loaded model."""
        self.controller.open_model(str(path))

    def _open_dropped(self, files: list) -> None:
        if files:
            self.open_path(files[0])

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_path(files[0])

    def _on_load_failed(self, failure) -> None:
        req = failure.request
        name = Path(failure.path).name
        if failure.needs in ("corpus", "meta") and req.path is not None:
            what = ("the text it was trained on (its vocabulary is the set of characters in that text)"
                    if failure.needs == "corpus" else "nanoGPT's meta.pkl (its vocabulary)")
            QMessageBox.information(self, f"{name} needs its vocabulary",
                                    f"<b>{html.escape(failure.path)}</b><br><br>{html.escape(failure.problem)}"
                                    f"<br><br>Choose {what}.")
            filt = "Text files (*.txt);;All files (*)" if failure.needs == "corpus" else "meta.pkl (*.pkl);;All files (*)"
            extra, _ = QFileDialog.getOpenFileName(self, f"Vocabulary for {name}", str(Path(failure.path).parent), filt)
            if extra:
                kw = {"corpus": extra, "meta": req.meta} if failure.needs == "corpus" else {"corpus": req.corpus, "meta": extra}
                self.controller.open_model(req.path, **kw)
            return
        no_model = self.controller.model_info is None
        if no_model:  # the window says what to do next, whatever failed
            self.status_labels["model"].setText("no model loaded")
            self.prompt_bar.set_message("No model is loaded: open a checkpoint (Ctrl+O) or train one (Ctrl+T).")
        if req.path is None and no_model:  # no bundled model at start-up: no modal dialog
            self.statusBar().showMessage(failure.problem)
            return
        keep = ("No model is loaded: open a checkpoint (Ctrl+O) or train one (Ctrl+T)." if no_model else
                "The previous model stays loaded.")
        self.error(f"Could not open {name}",
                   f"<b>{html.escape(failure.path)}</b><br><br>{html.escape(failure.problem)}<br><br>{keep}")

    def save_dialog(self) -> None:
        info = self.controller.model_info
        if info is None:
            return
        start = str(Path(st.last_dir("save")) / (Path(info.name.replace("training: ", "")).stem + ".safetensors"))
        path, _ = QFileDialog.getSaveFileName(self, "Save model as", start, "GPT Explorer model (*.safetensors)")
        if path:
            if not path.endswith(".safetensors"):
                path += ".safetensors"
            st.set_last_dir("save", path)
            self.controller.save_model(path)

    def _on_saved(self, path: str) -> None:
        st.add_recent_file(path)
        self._refresh_recent()
        self.statusBar().showMessage(f"Saved {path}", 6000)

    def error(self, title: str, text: str) -> None:
        QMessageBox.critical(self, title, text)
