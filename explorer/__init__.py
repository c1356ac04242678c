"""GPT Explorer: see how a small character-level GPT works.

The public API for scripts and notebooks::

    import explorer
    model = explorer.load()            # the bundled default model, or load("ckpt.pt", meta=...)
    trace = model.trace("ROMEO:")      # one recorded forward pass
    trace.acts["blocks.0.attn.hook_pattern"]   # (H, T, T) numpy array

Importing ``explorer`` does not import Qt.
"""
from .core import CharTokenizer, CheckpointError, ExplorerModel, GPT, GPTConfig, Trace, load

__version__ = "0.1.0"
__all__ = ["CharTokenizer", "CheckpointError", "ExplorerModel", "GPT", "GPTConfig", "Trace", "load",
           "__version__"]
