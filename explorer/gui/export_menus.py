"""Figure-set dialog, the File → Export menu and the right-click menu of every panel.

* ``FigureSetDialog`` / ``export_figure_set_dialog(parent, panels)``: choose a folder, the formats,
  the PNG size and the theme; writes every view of every panel plus ``index.html`` with a
  cancellable progress dialog, then (optionally) opens ``index.html``;
* ``install_export_menu(menu, get_panels, ...)``: adds Export view… (Ctrl+E), Copy view image
  (Ctrl+Shift+C), Export figure set… (Ctrl+Shift+E), Export panel data… and Export trace
  activations… to a menu;
* ``show_panel_menu(panel, pos, child)``: the right-click menu ``Panel`` shows;
* ``install_scene_menus(panel)``: replaces pyqtgraph's "Export..." in the panel's plots' own menus
  with ours (pyqtgraph's SVG exporter fails on heatmaps).
* ``export_command(...)``: the ``python -m explorer export`` line that remakes a figure set.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMenu, QProgressDialog, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from . import settings as st
from .export_data import safe_name
from .export_dialogs import (SET_DIR_KEY, SIZES, _status, context_for, copy_view_image, export_dialog,
                             export_panel_data, export_trace_dialog, view_at)
from .export_render import ExportError
from .export_set import FigureSetResult, destination_state, export_figure_set
from .wrapped_text import WrappedText


def export_command(*, source: str | None, context, out: str | Path, formats, scale, width, keep_theme: bool,
                   corpus: str | None = None, meta: str | None = None) -> str | None:
    """The shell command that makes the same figure set headlessly (None without a model file)."""
    if not source:
        return None
    info = context.info or {}
    args = ["python", "-m", "explorer", "export", "--checkpoint", str(source)]
    if corpus:
        args += ["--corpus", str(corpus)]
    if meta:
        args += ["--meta", str(meta)]
    args += ["--prompt", context.prompt, "--out", str(out), "--format", ",".join(formats)]
    if info.get("layer") is not None:
        args += ["--layer", str(info["layer"])]
    if info.get("ln_site"):
        args += ["--ln-site", str(info["ln_site"])]
    if info.get("head") is not None:
        args += ["--head", str(info["head"])]
    if info.get("position") is not None:
        args += ["--position", str(info["position"])]
    if info.get("projection"):
        args += ["--projection", "tsne" if "SNE" in str(info["projection"]).upper() else "pca"]
    args += ["--width", str(width)] if width else ["--scale", f"{scale:g}"]
    if keep_theme:
        args.append("--keep-theme")
    return " ".join(shlex.quote(a) for a in args)


def default_set_folder(base: Path, context) -> Path:
    """``base/<model>_<prompt start>``, numbered when that name holds something else."""
    prompt = safe_name(context.prompt[:24].replace(" ", "_").replace("\n", "_")) if context.prompt else "figures"
    stem = safe_name(f"{context.model_name or 'model'}_{prompt}")
    candidate, n = base / stem, 2
    while True:
        try:
            destination_state(candidate)
            return candidate
        except ExportError:
            candidate = base / f"{stem}_{n}"
            n += 1


class FigureSetDialog(QDialog):
    """Export every panel's views into one folder. ``export_now()`` does the work."""

    def __init__(self, parent: QWidget | None, panels, *, source: str | None = None,
                 corpus: str | None = None, meta: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export figure set")
        self.panels = list(panels)
        self.source, self.corpus, self.meta = source, corpus, meta
        self.result: FigureSetResult | None = None
        self.context = context_for(self.panels)
        if not self.context.prompt and not any(getattr(p, "trace", None) for p in self.panels):
            raise ExportError("no figures yet: load a model and type a prompt first")
        self.folder_edit = QLineEdit(str(default_set_folder(Path(st.last_dir(SET_DIR_KEY)), self.context)))
        self.folder_edit.setToolTip("A new or empty folder (an earlier figure set there is replaced)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        self.format_checks = {}
        fmt_row = QHBoxLayout()
        for key, label, on in (("png", "PNG", True), ("svg", "SVG", True), ("pdf", "PDF", False)):
            box = QCheckBox(label)
            box.setChecked(on)
            box.setToolTip({"png": "Images for slides", "svg": "Vector drawings for editing and the web",
                            "pdf": "One-page vector documents for print"}[key])
            self.format_checks[key] = box
            fmt_row.addWidget(box)
        fmt_row.addStretch(1)
        self.size_box = QComboBox()
        for label, s in SIZES:
            self.size_box.addItem(label, s)
        self.size_box.setCurrentIndex(1)
        self.width_spin = QSpinBox()
        self.width_spin.setRange(16, 16384)
        self.width_spin.setValue(1920)
        self.width_spin.setSuffix(" px")
        self.width_spin.setVisible(False)
        self.size_box.currentIndexChanged.connect(
            lambda _i: self.width_spin.setVisible(self.size_box.currentData() is None))
        size_row = QHBoxLayout()
        size_row.addWidget(self.size_box)
        size_row.addWidget(self.width_spin)
        size_row.addStretch(1)
        self.keep_theme = QCheckBox("Keep the app's colours (default: white background)")
        self.include_data = QCheckBox("Include the data (CSV tables, NPZ arrays, every activation of the trace)")
        self.include_data.setChecked(True)
        self.open_after = QCheckBox("Open index.html when done")
        self.open_after.setChecked(True)
        n_views = sum(len(p.export_views()) for p in self.panels)
        summary = QLabel(f"{n_views} views of {len(self.panels)} panels · model {self.context.model_name} · "
                         f"{self.context.settings_text()}")
        summary.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #D55E00")
        self.error_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("&Folder:", row)
        form.addRow("Formats:", fmt_row)
        form.addRow("PNG &size:", size_row)
        form.addRow("", self.keep_theme)
        form.addRow("", self.include_data)
        form.addRow("", self.open_after)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.addButton("&Export", QDialogButtonBox.ButtonRole.AcceptRole)
        ok.setDefault(True)
        buttons.accepted.connect(self._on_export)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(summary)
        lay.addLayout(form)
        lay.addWidget(self.error_label)
        lay.addWidget(buttons)

    def formats(self) -> list[str]:
        return [k for k, box in self.format_checks.items() if box.isChecked()]

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export the figure set into…", self.folder_edit.text())
        if not chosen:
            return
        path = Path(chosen)
        try:
            destination_state(path)
        except ExportError:  # a folder with other files: make the set a new folder inside it
            path = default_set_folder(path, self.context)
        self.folder_edit.setText(str(path))

    def export_now(self, progress=None) -> FigureSetResult:
        folder = self.folder_edit.text().strip()
        if not folder:
            raise ExportError("choose a folder")
        scale = self.size_box.currentData()
        width = self.width_spin.value() if scale is None else None
        fmts = self.formats()
        command = export_command(source=self.source, context=self.context, out=folder, formats=fmts or ["png"],
                                 scale=scale, width=width, keep_theme=self.keep_theme.isChecked(),
                                 corpus=self.corpus, meta=self.meta)
        self.result = export_figure_set(self.panels, folder, self.context, formats=fmts, scale=scale, width=width,
                                        keep_theme=self.keep_theme.isChecked(),
                                        include_data=self.include_data.isChecked(), command=command,
                                        progress=progress)
        st.set_last_dir(SET_DIR_KEY, str(Path(folder).parent))
        return self.result

    def _on_export(self) -> None:
        dlg = QProgressDialog("Rendering the figures…", "Cancel", 0, 100, self)
        dlg.setWindowTitle("Export figure set")
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.setMinimumDuration(300)

        def progress(done: int, total: int, what: str):
            dlg.setMaximum(total)
            dlg.setValue(done)
            dlg.setLabelText(what)
            QApplication.processEvents()
            return not dlg.wasCanceled()

        try:
            result = self.export_now(progress)
        except ExportError as e:  # ExportCancelled included: the reason, and nothing was written
            self.error_label.setText(str(e))
            return
        finally:
            dlg.close()
        _status(self.parentWidget(), f"Wrote {len(result.files)} files to {result.folder}")
        if result.problems:
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.warning(self, "Some figures are missing",
                                "The figure set was written without:\n\n" + "\n".join(result.problems))
        if self.open_after.isChecked():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(result.index)))
        self.accept()


def export_figure_set_dialog(parent: QWidget | None, panels, *, source: str | None = None,
                             corpus: str | None = None, meta: str | None = None) -> FigureSetResult | None:
    """Show the figure-set dialog; return what was written, or None if cancelled."""
    try:
        dlg = FigureSetDialog(parent, panels, source=source, corpus=corpus, meta=meta)
    except ExportError as e:
        _status(parent, str(e))
        return None
    dlg.exec()
    return dlg.result


# ---------------------------------------------------------------------------------------------
# menus
# ---------------------------------------------------------------------------------------------
def _current_panel(panels):
    focus = QApplication.focusWidget()
    for p in panels:
        if focus is not None and (p is focus or p.isAncestorOf(focus)):
            return p
    return next((p for p in panels if p.isVisible() and getattr(p, "trace", None) is not None), None) or (
        panels[0] if panels else None)


def install_export_menu(menu: QMenu, get_panels: Callable[[], list], *, parent: QWidget | None = None,
                        get_current: Callable[[], object] | None = None,
                        get_source: Callable[[], tuple | str | None] | None = None) -> dict[str, QAction]:
    """Add the export actions to ``menu`` (e.g. File → Export) and return them by name.

    ``get_panels()`` returns the panels to offer (those with a trace are used);
    ``get_current()`` the panel the user is looking at (default: the one holding the focus);
    ``get_source()`` the model file (or ``(path, corpus, meta)``) for the "make this set again"
    command recorded in index.html.
    """
    owner = parent or menu.parentWidget()

    def panels():
        return [p for p in get_panels() if p is not None]

    def current():
        ps = panels()
        return (get_current() if get_current else None) or _current_panel(ps)

    def source():
        s = get_source() if get_source else None
        return tuple(s) + (None,) * (3 - len(s)) if isinstance(s, (tuple, list)) else (s, None, None)

    def do_copy():
        p = current()
        if p is None:
            return
        try:
            copy_view_image(p)
        except ExportError as e:
            _status(owner, str(e))
            return
        _status(owner, f"Copied the {p.title} view to the clipboard")

    def do_set():
        src, corpus, meta = source()
        export_figure_set_dialog(owner, panels(), source=src, corpus=corpus, meta=meta)

    def do_data():
        p = current()
        if p is not None:
            export_panel_data(owner, p)

    def do_trace():
        p = next((p for p in panels() if getattr(p, "trace", None) is not None), None)
        export_trace_dialog(owner, p.trace if p is not None else None)

    specs = [
        ("view", "Export &view…", lambda: export_dialog(owner, panels(), current()), "Ctrl+E",
         "Save a view as PNG (1×, 2×, 4× or a width), SVG or PDF, with a title saying what it shows."),
        ("copy", "&Copy view image", do_copy, "Ctrl+Shift+C",
         "Copy the current panel's main view to the clipboard at 2×, ready to paste into slides."),
        ("set", "Export &figure set…", do_set, "Ctrl+Shift+E",
         "Write every panel's views for this prompt into a folder, with an index.html page."),
        ("data", "Export panel &data (CSV/NPZ)…", do_data, None,
         "Save the numbers behind the current panel: tables as CSV, arrays as NPZ."),
        ("trace", "Export &trace activations (NPZ)…", do_trace, None,
         "Save every activation of the current trace, under TransformerLens names, in one .npz file."),
    ]
    actions = {}
    for name, text, slot, key, tip in specs:
        a = QAction(text, owner or menu)
        if key:
            a.setShortcut(QKeySequence(key))
        a.setToolTip(tip)
        a.setStatusTip(tip)
        a.triggered.connect(slot)
        menu.addAction(a)
        if owner is not None:
            owner.addAction(a)
        actions[name] = a

    def update():
        ready = any(getattr(p, "trace", None) is not None for p in panels())
        for a in actions.values():
            a.setEnabled(ready)
    menu.aboutToShow.connect(update)
    return actions


def _panel_actions(panel, view, menu: QMenu) -> None:
    menu.addAction("Export view…", lambda: export_dialog(panel.window(), [panel], panel, view))
    def copy():
        try:
            copy_view_image(panel, view)
            _status(panel, f"Copied “{view.title}” to the clipboard")
        except ExportError as e:
            _status(panel, str(e))
    menu.addAction("Copy image", copy)
    menu.addAction("Export data (CSV/NPZ)…", lambda: export_panel_data(panel.window(), panel))


def build_panel_menu(panel, child: QWidget | None = None) -> QMenu | None:
    """The panel's export menu for the view under ``child``; None when there is nothing to
    export yet (no trace)."""
    if getattr(panel, "trace", None) is None:
        return None
    try:
        view = view_at(panel, child)
    except ExportError:
        return None
    if view is None:
        return None
    menu = QMenu(panel)
    menu.setToolTipsVisible(True)
    menu.addSection(view.title if len(view.title) <= 60 else view.title[:59] + "…")
    _panel_actions(panel, view, menu)
    if isinstance(child, WrappedText) and child.plain_text():
        menu.addSeparator()
        menu.addAction("Copy text", lambda: _copy_text(panel, child.plain_text()))
    return menu


def _copy_text(panel, text: str) -> None:
    """Put a caption's or a summary's text on the clipboard (they are drawn, not selectable)."""
    QApplication.clipboard().setText(text)
    _status(panel, "Copied the text to the clipboard")


def show_panel_menu(panel, global_pos, child: QWidget | None = None) -> bool:
    """Pop up the panel's export menu at ``global_pos``. False if there is nothing to export (no
    trace yet), so the caller can let the event go on."""
    if QApplication.activePopupWidget() is not None:
        return True  # a plot's own menu (which holds the same entries) is already open
    menu = build_panel_menu(panel, child)
    if menu is None:
        return False
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    menu.popup(global_pos)
    return True


def install_scene_menus(panel) -> int:
    """Replace pyqtgraph's scene "Export..." entry in the panel's plots with ours; return how many
    scenes were changed (each scene only once)."""
    import pyqtgraph as pg

    changed = 0
    for gv in panel.findChildren(pg.GraphicsView):
        scene = gv.scene()
        if scene is None or getattr(scene, "_explorer_export_menu", False):
            continue
        export = QAction("Export view…", scene)
        copy = QAction("Copy image", scene)

        def find(gv=gv):
            return view_at(panel, gv) if getattr(panel, "trace", None) is not None else None

        export.triggered.connect(lambda _c=False, find=find: export_dialog(panel.window(), [panel], panel, find()))
        copy.triggered.connect(lambda _c=False, find=find: find() and copy_view_image(panel, find()))
        scene.contextMenu = [export, copy]
        scene._explorer_export_menu = True
        changed += 1
    return changed
