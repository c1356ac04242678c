"""Fixtures for the GUI tests (pytest-qt, offscreen).

* Every test gets its own settings folder (``QSettings`` INI files under ``tmp_path``), so the
  user's layout and recent files are never read or written.
* Modal dialogs never block: ``dialogs`` records every ``QMessageBox`` and file-dialog call and
  answers with what the test put in ``dialogs.answers`` (file dialogs: cancel by default).
* ``model_file`` is a tiny random model saved in ``tmp_path``; ``window`` is a main window that
  has loaded it and painted its first trace. Tear-down closes it and checks every thread ended.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    folder = tmp_path / "settings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("GPT_EXPLORER_CACHE", str(tmp_path / "cache"))
    return folder


class Dialogs:
    """Stands in for modal dialogs: records ``(kind, title, text)`` and answers from ``answers``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.answers: dict[str, list] = {}

    def _answer(self, kind: str, default):
        queue = self.answers.get(kind)
        return queue.pop(0) if queue else default

    def box(self, kind: str, default):
        def fn(parent, title, text, *args, **kwargs):
            self.calls.append((kind, title, text))
            return self._answer(kind, default)
        return fn

    def file(self, kind: str):
        def fn(parent=None, caption="", directory="", filter="", *args, **kwargs):
            self.calls.append((kind, caption, directory))
            return self._answer(kind, ""), filter
        return fn

    def of_kind(self, kind: str) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] == kind]


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> Dialogs:
    d = Dialogs()
    monkeypatch.setattr(QMessageBox, "critical", d.box("critical", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "warning", d.box("warning", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "information", d.box("information", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "question", d.box("question", QMessageBox.StandardButton.Save))
    monkeypatch.setattr(QMessageBox, "about", d.box("about", None))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", d.file("open"))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", d.file("save"))
    return d


@pytest.fixture
def model_file(tmp_path, tiny_model):
    path = tmp_path / "tiny.safetensors"
    tiny_model.save(path)
    return path


def close_window(w) -> None:
    """Close like a user does and check that no thread is left running."""
    w.close()
    assert not w.controller.thread.isRunning(), "the trace thread is still running after close"
    assert w.training.worker is None, "a training thread is still attached after close"


@pytest.fixture
def make_window(qtbot):
    """``make_window(path, prompt, all_panels)``: a main window that has loaded ``path`` (None: the
    bundled model) and received the trace of ``prompt``; with ``all_panels=False`` it shows only
    the app's own panels (architecture, training), which is quicker to build. Closed (threads
    joined) at the end of the test."""
    from explorer.gui.main_window import MainWindow
    from explorer.gui.panels import ANALYSIS_PANELS

    made = []

    def make(path=None, prompt="First Citizen:\nBefore", all_panels=True):
        w = MainWindow(prompt=prompt, panels=ANALYSIS_PANELS if all_panels else ())
        qtbot.addWidget(w)
        made.append(w)
        w.show()
        with qtbot.waitSignal(w.controller.traceChanged, timeout=60000):
            w.controller.warm()
            w.controller.open_model(str(path) if path is not None else None)
        qtbot.waitUntil(w.sync.is_synced, timeout=60000)  # every visible panel shows that trace
        return w

    yield make
    for w in made:
        close_window(w)


@pytest.fixture
def window(make_window, model_file):
    """A window with every analysis panel that is installed."""
    return make_window(model_file)


@pytest.fixture
def light_window(make_window, model_file):
    """A window with only the architecture and training panels."""
    return make_window(model_file, all_panels=False)


@pytest.fixture
def synced(qtbot):
    """``synced(window)``: wait until every visible panel shows the controller's current trace and
    selection (the window hands them over one panel per event-loop turn); returns those panels."""
    def wait(w, timeout=20000):
        qtbot.waitUntil(w.sync.is_synced, timeout=timeout)
        return {n: p for n, p in w.panels.items() if w.sync.shown(n)}
    return wait
