"""The export dialogs and menus: Export view…, Copy image, Export data…, Export figure set…

Entry points (see ``explorer.gui.export`` for how the main window wires them):

* ``ExportDialog`` / ``export_dialog(parent, panels, panel, view)``: one view to PNG (1x, 2x, 4x or a
  pixel width), SVG or PDF, with a "keep the app's theme" option and a file chooser;
* ``FigureSetDialog`` / ``export_figure_set_dialog(parent, panels)``: every view of every panel
  into one folder with ``index.html``, with a progress dialog that can cancel;
* ``copy_view_image(panel, view)``: the view on the clipboard at 2x;
* ``export_panel_data(parent, panel)``: the panel's tables (CSV) and arrays (NPZ) into a folder;
* ``export_trace_dialog(parent, trace)``: every activation of the trace into one ``.npz``;
* ``show_panel_menu(panel, pos, child)`` and ``install_scene_menus(panel)``: the right-click menu
  every panel gets from ``Panel`` (on plots too, where pyqtgraph's own "Export..." is replaced).

Errors never pop up a traceback: the dialogs show the one-line reason in red under their fields
and stay open, so the user can pick another folder.
"""
from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from . import settings as st
from .export_data import data_files, safe_name, trace_npz, write_atomic
from .export_render import (DEFAULT_SCALE, ExportError, FigureContext, copy_image, layout_figure,
                            raster_scale, render_format)

FORMATS = [("png", "PNG image"), ("svg", "SVG vector drawing"), ("pdf", "PDF, one page")]
SIZES = [("1×", 1.0), ("2× (slides)", 2.0), ("4× (print)", 4.0), ("Width in pixels…", None)]
LAST_DIR_KEY = "export"
SET_DIR_KEY = "figure_sets"


# ---------------------------------------------------------------------------------------------
# context of a panel's figures
# ---------------------------------------------------------------------------------------------
def panel_settings(panel) -> dict[str, str]:
    """Settings a panel reports for its figures (``export_settings()``), plus the embedding
    projection when the panel has one."""
    out = dict(panel.export_settings()) if hasattr(panel, "export_settings") else {}
    method = getattr(panel, "method", None)
    if hasattr(panel, "set_projection") and isinstance(method, str) and "projection" not in out:
        out["projection"] = {"pca": "PCA", "tsne": "t-SNE"}.get(method, method)
    return out


def context_for(panels, panel=None) -> FigureContext:
    """The ``FigureContext`` of ``panel`` (or of the first panel with a trace), with the settings
    of every panel given (so a figure set records the projection too)."""
    order = ([panel] if panel is not None else []) + [p for p in panels if p is not panel]
    src = next((p for p in order if getattr(p, "trace", None) is not None), None)
    if src is None:
        return FigureContext()
    extra: dict[str, str] = {}
    for p in panels if panel is None else [panel]:
        extra.update(panel_settings(p))
    projection = extra.pop("projection", None)
    return FigureContext.from_trace(src.trace, src.selection, projection=projection, extra=extra)


def views_of(panel) -> list:
    try:
        return list(panel.export_views())
    except Exception as e:  # a panel without a trace may fail to describe itself
        raise ExportError(f"the {getattr(panel, 'title', 'panel')} panel cannot export now: {e}") from e


def view_at(panel, widget: QWidget | None):
    """The panel's view that contains ``widget`` (the first view when none does)."""
    views = views_of(panel)
    if widget is not None:
        for v in views:
            w = v.widget
            if isinstance(w, QWidget) and (w is widget or w.isAncestorOf(widget)):
                return v
    return views[0] if views else None


def _status(parent, text: str) -> None:
    win = parent.window() if isinstance(parent, QWidget) else None
    bar = getattr(win, "statusBar", None)
    if callable(bar):
        bar().showMessage(text, 8000)


# ---------------------------------------------------------------------------------------------
# one view
# ---------------------------------------------------------------------------------------------
class ExportDialog(QDialog):
    """Export one view. ``export_now()`` does the work (the tests call it directly)."""

    def __init__(self, parent: QWidget | None, panels, panel=None, view=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export view")
        self.panels = [p for p in panels if getattr(p, "trace", None) is not None] or list(panels)
        self.written: Path | None = None
        self._auto_name = True
        self.view_box = QComboBox()
        self.view_box.setToolTip("Which view to export (every panel's views are listed)")
        self._entries = []
        for p in self.panels:
            for v in views_of(p):
                self._entries.append((p, v))
                self.view_box.addItem(f"{p.title} — {v.title}")
        if not self._entries:
            raise ExportError("no view to export: load a model and type a prompt first")
        start = 0
        for i, (p, v) in enumerate(self._entries):
            if (view is not None and v.name == view.name and p is panel) or (view is None and p is panel):
                start = i
                break
        self.view_box.setCurrentIndex(start)
        self.format_box = QComboBox()
        for key, label in FORMATS:
            self.format_box.addItem(label, key)
        self.format_box.setToolTip("PNG for slides; SVG and PDF stay sharp at any size and in print")
        self.size_box = QComboBox()
        for label, s in SIZES:
            self.size_box.addItem(label, s)
        self.size_box.setCurrentIndex(1)
        self.size_box.setToolTip("PNG resolution: 2× draws every line and letter at twice the screen's pixels")
        self.width_spin = QSpinBox()
        self.width_spin.setRange(16, 16384)
        self.width_spin.setValue(1920)
        self.width_spin.setSuffix(" px")
        self.width_spin.setToolTip("The PNG's width; its height follows the view's shape")
        self.pixels = QLabel()
        self.keep_theme = QCheckBox("Keep the app's colours (default: white background)")
        self.keep_theme.setToolTip("Unchecked, the figure is drawn on white with dark text, as slides and paper want")
        self.path_edit = QLineEdit()
        self.path_edit.setToolTip("Where to write the file")
        self.path_edit.textEdited.connect(lambda _t: setattr(self, "_auto_name", False))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        size_row = QHBoxLayout()
        size_row.addWidget(self.size_box)
        size_row.addWidget(self.width_spin)
        size_row.addWidget(self.pixels, 1)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #D55E00")
        self.error_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("&View:", self.view_box)
        form.addRow("&Format:", self.format_box)
        form.addRow("&Size:", size_row)
        form.addRow("", self.keep_theme)
        form.addRow("&File:", path_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("&Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.copy_button = buttons.addButton("&Copy image", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Put the view on the clipboard as an image at the chosen size")
        buttons.accepted.connect(self._on_export)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self._on_copy)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error_label)
        lay.addWidget(buttons)
        self.view_box.currentIndexChanged.connect(self._refresh)
        self.format_box.currentIndexChanged.connect(self._refresh)
        self.size_box.currentIndexChanged.connect(self._refresh)
        self.width_spin.valueChanged.connect(self._refresh)
        self.keep_theme.toggled.connect(self._refresh)
        self._folder = Path(st.last_dir(LAST_DIR_KEY))
        self._refresh()

    # ---- state ---------------------------------------------------------------------------------
    @property
    def panel(self):
        return self._entries[self.view_box.currentIndex()][0]

    @property
    def view(self):
        return self._entries[self.view_box.currentIndex()][1]

    @property
    def fmt(self) -> str:
        return self.format_box.currentData()

    def size_choice(self) -> tuple[float | None, int | None]:
        s = self.size_box.currentData()
        return (None, self.width_spin.value()) if s is None else (float(s), None)

    def set_choice(self, *, fmt: str | None = None, scale: float | None = None, width: int | None = None,
                   keep_theme: bool | None = None, path: str | Path | None = None) -> None:
        """Set the fields as a user would (used by the menus and the tests)."""
        if fmt is not None:
            self.format_box.setCurrentIndex(self.format_box.findData(fmt))
        if width is not None:
            self.size_box.setCurrentIndex(len(SIZES) - 1)
            self.width_spin.setValue(int(width))
        elif scale is not None:
            idx = next((i for i, (_l, s) in enumerate(SIZES) if s == scale), None)
            if idx is None:
                raise ValueError(f"scale must be one of 1, 2, 4 (or give a width), not {scale}")
            self.size_box.setCurrentIndex(idx)
        if keep_theme is not None:
            self.keep_theme.setChecked(keep_theme)
        if path is not None:
            self._auto_name = False
            self.path_edit.setText(str(path))

    def _refresh(self, *_):
        png = self.fmt == "png"
        for w in (self.size_box, self.width_spin, self.pixels, self.copy_button):
            w.setEnabled(png or w is self.copy_button)
        self.width_spin.setVisible(self.size_box.currentData() is None)
        if self._auto_name:
            self.path_edit.setText(str(self._folder / f"{safe_name(self.view.name)}.{self.fmt}"))
        else:
            text = self.path_edit.text().strip()
            if text:
                stem = re.sub(r"\.(png|svg|pdf)$", "", text, flags=re.IGNORECASE)
                self.path_edit.setText(f"{stem}.{self.fmt}")
        try:
            fig = layout_figure(self.view, context_for(self.panels, self.panel),
                                keep_theme=self.keep_theme.isChecked())
            scale, width = self.size_choice()
            s = raster_scale(fig, scale, width)
            w = width if width else round(fig.size.width() * s)
            self.pixels.setText(f"{w} × {round(fig.size.height() * s)} px" if png else "")
            self.error_label.setText("")
        except ExportError as e:
            self.pixels.setText("")
            self.error_label.setText(str(e))

    def _browse(self) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "pdf": "PDF document (*.pdf)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export view", self.path_edit.text(), filters[self.fmt])
        if path:
            self.set_choice(path=path)
            self._refresh()

    # ---- actions -------------------------------------------------------------------------------
    def export_now(self) -> Path:
        """Write the file as chosen; raise ExportError with the reason if it cannot be written."""
        text = self.path_edit.text().strip()
        if not text:
            raise ExportError("choose a file name")
        path = Path(text).expanduser()
        if path.suffix.lower() != f".{self.fmt}":
            path = path.with_name(path.name + f".{self.fmt}")
        scale, width = self.size_choice()
        ctx = context_for(self.panels, self.panel)
        data = render_format(self.view, self.fmt, ctx, scale=scale, width=width,
                             keep_theme=self.keep_theme.isChecked())
        write_atomic(path, data)
        st.set_last_dir(LAST_DIR_KEY, str(path.parent))
        self.written = path
        return path

    def _on_export(self) -> None:
        try:
            path = self.export_now()
        except ExportError as e:
            self.error_label.setText(str(e))
            return
        _status(self.parentWidget(), f"Exported {path}")
        self.accept()

    def _on_copy(self) -> None:
        scale, width = self.size_choice()
        try:
            ctx = context_for(self.panels, self.panel)
            if width:
                scale = width / layout_figure(self.view, ctx).width
            copy_image(self.view, ctx, scale=scale, keep_theme=self.keep_theme.isChecked())
        except ExportError as e:
            self.error_label.setText(str(e))
            return
        _status(self.parentWidget(), f"Copied “{self.view.title}” to the clipboard")
        self.accept()


def export_dialog(parent: QWidget | None, panels, panel=None, view=None) -> Path | None:
    """Show the Export view dialog; return the file written, or None if cancelled."""
    try:
        dlg = ExportDialog(parent, panels, panel, view)
    except ExportError as e:
        _status(parent, str(e))
        return None
    dlg.exec()
    return dlg.written


def copy_view_image(panel, view=None, *, scale: float = DEFAULT_SCALE, keep_theme: bool = False):
    """Copy ``view`` (default: the panel's first) to the clipboard; return the QImage."""
    view = view or view_at(panel, None)
    if view is None:
        raise ExportError(f"the {panel.title} panel has no view to copy")
    return copy_image(view, context_for([panel], panel), scale=scale, keep_theme=keep_theme)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def write_panel_data(panel, folder: str | Path) -> list[Path]:
    """Write the panel's ``export_data()`` into ``folder`` (CSV for tables, NPZ for arrays)."""
    entries = panel.export_data() or {}
    if not entries:
        raise ExportError(f"the {panel.title} panel has no data to export yet")
    files = data_files(entries)
    return [write_atomic(Path(folder) / name, content) for name, content in files.items()]


def export_panel_data(parent: QWidget | None, panel) -> list[Path]:
    folder = QFileDialog.getExistingDirectory(parent, f"Export the {panel.title} panel's data into…",
                                              st.last_dir(LAST_DIR_KEY))
    if not folder:
        return []
    try:
        paths = write_panel_data(panel, folder)
    except ExportError as e:
        _error(parent, "Could not export the data", str(e))
        return []
    st.set_last_dir(LAST_DIR_KEY, folder)
    _status(parent, f"Wrote {', '.join(p.name for p in paths)} to {folder}")
    return paths


def export_trace_dialog(parent: QWidget | None, trace) -> Path | None:
    if trace is None:
        _status(parent, "Nothing to export yet: type a prompt first")
        return None
    start = str(Path(st.last_dir(LAST_DIR_KEY)) / f"{safe_name(trace.model_name)}_trace.npz")
    path, _ = QFileDialog.getSaveFileName(parent, "Export the trace's activations", start, "NumPy archive (*.npz)")
    if not path:
        return None
    path = Path(path) if path.lower().endswith(".npz") else Path(path + ".npz")
    try:
        write_atomic(path, trace_npz(trace))
    except ExportError as e:
        _error(parent, "Could not export the trace", str(e))
        return None
    st.set_last_dir(LAST_DIR_KEY, str(path.parent))
    _status(parent, f"Wrote every activation of the trace to {path}")
    return path


def _error(parent, title: str, text: str) -> None:
    from PySide6.QtWidgets import QMessageBox

    QMessageBox.warning(parent, title, text)
