"""GPT Explorer: see how a small character-level GPT works.

The public API for scripts and notebooks::

    import explorer
    model = explorer.load()            # the bundled default model, or load("ckpt.pt", meta=...)
    trace = model.trace("ROMEO:")      # one recorded forward pass
    trace.acts["blocks.0.attn.hook_pattern"]   # (H, T, T) numpy array

Importing ``explorer`` does not import Qt, nor torch: the names below are resolved on first use
(PEP 562), so the desktop app can paint its window before torch has finished loading.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["CharTokenizer", "CheckpointError", "ExplorerModel", "GPT", "GPTConfig", "Trace", "load",
           "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .core import CharTokenizer, CheckpointError, ExplorerModel, GPT, GPTConfig, Trace, load


def __getattr__(name: str):
    if name in __all__:
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
