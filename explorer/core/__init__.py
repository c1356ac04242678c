"""The model side of GPT Explorer: no Qt here, ever. Testable and scriptable on its own.

The names below are resolved on first use (PEP 562), so light modules such as
``explorer.core.tokenizer`` can be imported without loading torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["CharTokenizer", "CheckpointError", "ExplorerModel", "GPT", "GPTConfig", "Trace",
           "UnknownCharacterError", "load"]

_HOME = {"ExplorerModel": "api", "CheckpointError": "checkpoints", "load": "checkpoints", "GPT": "model",
         "GPTConfig": "model", "CharTokenizer": "tokenizer", "UnknownCharacterError": "tokenizer",
         "Trace": "trace"}

if TYPE_CHECKING:  # pragma: no cover
    from .api import ExplorerModel
    from .checkpoints import CheckpointError, load
    from .model import GPT, GPTConfig
    from .tokenizer import CharTokenizer, UnknownCharacterError
    from .trace import Trace


def __getattr__(name: str):
    if name in _HOME:
        from importlib import import_module

        return getattr(import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module 'explorer.core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
