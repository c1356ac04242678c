"""Export for teaching: every view to PNG, SVG and PDF; the numbers to CSV and NPZ; figure sets.

Everything goes through the panel contract (``export_views()`` → ``ExportView(name, widget, title)``,
``export_data()`` → ``{name: Table | array | dict of arrays}``), so the GUI, the context menus and
``python -m explorer export`` draw the same figures from the same panel code.

Library use (also from a script, with a QApplication)::

    from explorer.gui.export import FigureContext, export_view, export_figure_set
    ctx = FigureContext.from_trace(trace, selection)
    export_view(panel.export_views()[0], "attention.png", ctx, scale=2)   # or .svg / .pdf
    export_figure_set([attention, logits], "figures/", ctx, formats="png,svg")

Wiring into the main window (File → Export and every panel's right-click menu)::

    from .export import install_export_menu

    def model_source():  # the file (and lecture corpus) for the "make this set again" command
        info = self.controller.model_info
        return (info.source, (info.info or {}).get("corpus"), None) if info is not None else None

    export_menu = file_menu.addMenu("&Export")
    install_export_menu(export_menu, lambda: list(self.panels.values()), parent=self,
                        get_source=model_source)

``install_export_menu`` adds Export view… (Ctrl+E), Copy view image (Ctrl+Shift+C), Export figure
set… (Ctrl+Shift+E), Export panel data… and Export trace activations…; it enables them only when a
trace is shown. The right-click menu needs no wiring: ``Panel`` installs it for every panel
(``Panel.contextMenuEvent``), and replaces pyqtgraph's own "Export..." in the plots' menus.

The modules behind this one:

* ``export_render``: figures (header with model, prompt and what is shown; PNG/SVG/PDF);
* ``export_style``: the temporary white theme and print-friendly drawing during an export;
* ``export_data``: CSV, NPZ, the whole trace's activations, atomic file writes;
* ``export_set``: figure sets (all-or-nothing folder, ``index.html``, ``figures.json``);
* ``export_dialogs`` / ``export_menus``: the dialogs and menus;
* ``export_headless``: the panels built offscreen for ``python -m explorer export``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .export_data import arrays_npz, data_files, table_csv, trace_arrays, trace_npz, write_atomic
from .export_dialogs import (ExportDialog, context_for, copy_view_image, export_dialog, export_panel_data,
                             export_trace_dialog, write_panel_data)
from .export_menus import (FigureSetDialog, export_command, export_figure_set_dialog, install_export_menu,
                           install_scene_menus, show_panel_menu)
from .export_render import (DEFAULT_SCALE, FIGURE_FORMATS, SCALES, ExportError, FigureContext, copy_image,
                            render_format, render_image, render_pdf, render_png, render_svg)
from .export_set import ExportCancelled, FigureSetResult, export_figure_set, parse_formats

__all__ = [
    "DEFAULT_SCALE", "FIGURE_FORMATS", "SCALES", "ExportCancelled", "ExportDialog", "ExportError",
    "FigureContext", "FigureSetDialog", "FigureSetResult", "arrays_npz", "context_for", "copy_image",
    "copy_view_image", "data_files", "export_command", "export_dialog", "export_figure_set",
    "export_figure_set_dialog", "export_panel_data", "export_trace_dialog", "export_view", "install_export_menu",
    "install_scene_menus", "parse_formats", "render_format", "render_image", "render_pdf", "render_png",
    "render_svg", "save_trace_npz", "show_panel_menu", "table_csv", "trace_arrays", "trace_npz",
    "write_atomic", "write_panel_data",
]


def export_view(view, path: str | os.PathLike, context: FigureContext | None = None, *, fmt: str | None = None,
                scale: float | None = DEFAULT_SCALE, width: int | None = None, keep_theme: bool = False) -> Path:
    """Write one view to ``path`` (format from ``fmt`` or the file's extension), atomically."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FIGURE_FORMATS:
        raise ExportError(f"cannot tell the format of {path.name!r}: use a .png, .svg or .pdf name")
    data = render_format(view, fmt, context, scale=scale, width=width, keep_theme=keep_theme)
    return write_atomic(path, data)


def save_trace_npz(trace, path: str | os.PathLike) -> Path:
    """Every activation of ``trace`` (TransformerLens names), logits, probs, logit lens and tokens."""
    return write_atomic(path, trace_npz(trace))
