"""The model side of GPT Explorer: no Qt here, ever. Testable and scriptable on its own."""
from .api import ExplorerModel
from .checkpoints import CheckpointError, load
from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer, UnknownCharacterError
from .trace import Trace

__all__ = ["CharTokenizer", "CheckpointError", "ExplorerModel", "GPT", "GPTConfig", "Trace",
           "UnknownCharacterError", "load"]
