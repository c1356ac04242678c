"""The panel registry: which analysis panels the main window shows, in which dock.

``ANALYSIS_PANELS`` lists ``(module, class, dock title, object name)``. ``load_panel_classes()``
imports each one; a panel module that is missing or fails to import is skipped and the reason is
logged and returned, so the app runs with the panels it has. The architecture navigator and the
training panel belong to the app itself and are always present.

Importing this package is light (no torch, no pyqtgraph): panel modules are imported only when
``load_panel_classes()`` is called, after the core has been loaded in the background.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PanelSpec:
    module: str  # module name inside explorer.gui.panels
    cls: str
    title: str  # the dock's title
    object_name: str  # the dock's objectName (QSettings keys the layout by it)
    tip: str = ""


ANALYSIS_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("embeddings", "EmbeddingPanel", "Embeddings", "dock_embeddings",
              "Token and position embedding tables projected to 2-D (PCA / t-SNE), and the prompt's "
              "vectors through the layers."),
    PanelSpec("layernorm", "LayerNormPanel", "LayerNorm", "dock_layernorm",
              "What each LayerNorm does to the prompt's vectors: mean and std before and after, γ and β."),
    PanelSpec("attention", "AttentionPanel", "Attention", "dock_attention",
              "Where each position looks: the attention pattern of the selected layer and head."),
    PanelSpec("logits", "LogitsPanel", "Logits", "dock_logits",
              "What the model predicts next: lm_head's logits and probabilities, sampling, logit lens."),
)


def is_available(spec: PanelSpec) -> bool:
    """Whether the panel's module exists (without importing it)."""
    return importlib.util.find_spec(f"{__name__}.{spec.module}") is not None


def load_panel_class(spec: PanelSpec):
    """The panel class, or raise ImportError/AttributeError saying why it cannot be used."""
    module = importlib.import_module(f"{__name__}.{spec.module}")
    cls = getattr(module, spec.cls)
    from .base import Panel

    if not (isinstance(cls, type) and issubclass(cls, Panel)):
        raise TypeError(f"{spec.module}.{spec.cls} is not a Panel subclass")
    return cls


def load_panel_classes(specs=ANALYSIS_PANELS) -> tuple[dict[str, type], dict[str, str]]:
    """``({object_name: class}, {object_name: why it was skipped})``."""
    classes: dict[str, type] = {}
    skipped: dict[str, str] = {}
    for spec in specs:
        if not is_available(spec):
            skipped[spec.object_name] = f"explorer/gui/panels/{spec.module}.py is not installed yet"
            log.info("panel %s skipped: %s", spec.title, skipped[spec.object_name])
            continue
        try:
            classes[spec.object_name] = load_panel_class(spec)
        except Exception as e:  # a panel that fails to import must not take the app down
            skipped[spec.object_name] = f"{type(e).__name__}: {e}"
            log.warning("panel %s skipped: %s", spec.title, skipped[spec.object_name], exc_info=True)
    return classes, skipped
