"""The app's panels built offscreen, for ``python -m explorer export`` and for scripts.

``build_panels(model, trace, selection)`` makes the same panel classes the main window shows (the
registry in ``explorer.gui.panels``, plus the architecture navigator), lays each one out at
``PANEL_SIZE`` without putting a window on screen, and feeds them exactly what the window feeds
them: ``set_selection(sel)``, then ``set_trace(trace)``. ``selection_for(trace, ...)`` checks and
completes the selection the way the window's controller does (the LayerNorm site follows the
layer). The figures rendered from these panels are therefore the GUI's figures.
"""
from __future__ import annotations

import inspect
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from PySide6.QtCore import QCoreApplication, Qt, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from .export_render import ExportError
from .selection import EMBED, Selection

log = logging.getLogger(__name__)

PANEL_SIZE = (1200, 800)  # logical pixels of every panel in a headless export


def ensure_app() -> QApplication:
    """The QApplication, created offscreen (no window, no display needed) if there is none yet,
    with the app's own style so figures look as they do in the window."""
    app = QApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .app import make_app

    return make_app([] if app is None else None)


# Qt messages that say nothing to a user of the command line: the offscreen platform has no window
# manager to tell about size hints, and the PDF engine draws Fusion's header gradients flat.
_QT_NOISE = ("This plugin does not support propagateSizeHints", "QPdfEngine: unable to create a gradient")


@contextmanager
def quiet_qt_messages() -> Iterator[None]:
    """Drop Qt's harmless offscreen/PDF chatter; every other Qt message still reaches stderr."""
    def handler(_mode, _context, message: str) -> None:
        if not message.startswith(_QT_NOISE):
            print(message, file=sys.stderr)
    previous = qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)


def selection_for(trace, *, layer: int | None = None, head: int | None = None, position: int | None = None,
                  ln_site: str | None = None) -> Selection:
    """A valid ``Selection`` for ``trace``; raise ExportError (one line) for values out of range.

    ``layer``: -1 embeddings, 0..n_layer-1 a block, n_layer ln_f / lm_head (default 0);
    ``position``: a token index, negative counts from the end (default: the last token);
    ``ln_site``: default follows the layer (the block's ln1, ln_final for ln_f / lm_head).
    """
    L, H, T = trace.n_layer, trace.config.n_head, trace.T
    layer = 0 if layer is None else int(layer)
    if not EMBED <= layer <= L:
        raise ExportError(f"--layer {layer} is out of range: use -1 (embeddings), 0..{L - 1} (blocks) "
                          f"or {L} (ln_f / lm_head)")
    head = 0 if head is None else int(head)
    if not 0 <= head < H:
        raise ExportError(f"--head {head} is out of range: the model has heads 0..{H - 1}")
    if position is not None:
        position = int(position)
        if T == 0:
            raise ExportError("--position needs a prompt with at least one known character")
        if position < 0:
            position += T
        if not 0 <= position < T:
            raise ExportError(f"--position is out of range: the prompt has {T} tokens (0..{T - 1}, or -1 for the last)")
    sites = trace.ln_sites
    if ln_site is None:
        ln_site = "ln_final" if layer >= L else f"blocks.{max(0, layer)}.ln1"
    elif ln_site not in sites:
        raise ExportError(f"--ln-site {ln_site!r} is not a LayerNorm of this model: {', '.join(sites)}")
    return Selection(layer=layer, ln_site=ln_site, head=head, position=position)


def settle(seconds: float = 0.25) -> None:
    """Let panels finish work they scheduled with zero-delay timers or queued signals."""
    end = time.perf_counter() + seconds
    while True:
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()
        if time.perf_counter() >= end:
            break
        time.sleep(0.01)


def _make(cls):
    kwargs = {}
    params = inspect.signature(cls).parameters
    if "prewarm_ms" in params:
        kwargs["prewarm_ms"] = None  # no background t-SNE worker in a one-shot export
    return cls(parent=None, **kwargs) if "parent" in params else cls(**kwargs)


def build_panels(model, trace, selection: Selection, *, projection: str = "pca",
                 size: tuple[int, int] = PANEL_SIZE, architecture: bool = True) -> tuple[list, dict[str, str]]:
    """``(panels, skipped)``: the app's panels, laid out offscreen at ``size`` and showing
    ``trace`` with ``selection``; ``skipped`` says which panel could not be built and why."""
    from .panels import ANALYSIS_PANELS, load_panel_classes

    ensure_app()
    classes, skipped = load_panel_classes()
    panels = []
    if architecture:
        try:
            from ..core.architecture import describe
            from .panels.architecture import ArchitecturePanel

            arch = _make(ArchitecturePanel)
            arch.set_architecture(describe(model.module))
            panels.append(arch)
        except Exception as e:  # the navigator is a bonus figure; the analysis panels matter most
            log.warning("architecture panel skipped: %s", e, exc_info=True)
            skipped["dock_architecture"] = f"{type(e).__name__}: {e}"
    for spec in ANALYSIS_PANELS:
        cls = classes.get(spec.object_name)
        if cls is None:
            continue
        try:
            panels.append(_make(cls))
        except Exception as e:
            log.warning("panel %s failed to build", spec.title, exc_info=True)
            skipped[spec.object_name] = f"{type(e).__name__}: {e}"
    for p in panels:
        p.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        p.resize(*size)
        p.show()
    settle(0.05)
    for p in panels:
        p.set_selection(selection)
    for p in panels:
        p.set_trace(trace)
    for p in panels:
        if hasattr(p, "set_projection"):
            p.set_projection(projection, wait=True)
    settle()
    return panels, skipped


def close_panels(panels) -> None:
    """Close and delete the panels, delivering every pending event first (pyqtgraph items must not
    receive events while Python shuts down)."""
    for p in panels:
        try:
            if hasattr(p, "cancel_tsne"):
                p.cancel_tsne()
            p.close()
            p.deleteLater()
        except RuntimeError:
            pass
    settle(0.02)
