"""``ExplorerModel``: what ``explorer.load()`` returns, the object notebook users script against.

It bundles the torch module, its config and vocabulary, a name, and the training info the file
carried, and offers ``trace(text)``, ``generate(...)`` and ``save(path)``.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer
from .trace import Trace, model_params, trace_text


class ExplorerModel:
    """A loaded character-level GPT.

    Attributes:
        config: the ``GPTConfig``.
        vocab: the token strings, index = id.
        module: the torch ``nn.Module`` (``GPT``).
        tokenizer: the ``CharTokenizer``.
        name: a short display name (the file's stem, or "untrained").
        source: the file it came from, if any.
        info: metadata the checkpoint carried (training command, losses, corpus, ...).
    """

    def __init__(self, module: GPT, vocab, *, name: str = "model", source: str | Path | None = None,
                 info: Mapping[str, Any] | None = None) -> None:
        if len(vocab) != module.config.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} tokens but the model's vocab_size is "
                             f"{module.config.vocab_size}")
        self.module = module.eval()
        self.tokenizer = CharTokenizer(vocab)
        self.name = name
        self.source = str(source) if source is not None else None
        self.info: dict[str, Any] = dict(info or {})
        self.weights_version = 0
        self._params: dict[str, np.ndarray] | None = None
        self._params_key: tuple[int, ...] = ()
        self._param_list = list(module.parameters())
        self._lock = threading.RLock()

    # ---- properties -------------------------------------------------------------------------
    @property
    def config(self) -> GPTConfig:
        return self.module.config

    @property
    def vocab(self) -> list[str]:
        return list(self.tokenizer.vocab)

    @property
    def n_params(self) -> int:
        return self.module.num_params()

    def __repr__(self) -> str:
        c = self.config
        return (f"ExplorerModel({self.name!r}, {c.family}, n_layer={c.n_layer}, n_head={c.n_head}, "
                f"n_embd={c.n_embd}, block_size={c.block_size}, vocab={c.vocab_size}, "
                f"params={self.n_params:,})")

    # ---- inference ----------------------------------------------------------------------------
    def trace(self, text: str) -> Trace:
        """One recorded forward pass over ``text``. See ``explorer.core.trace`` for the rules on
        unknown characters, over-long and empty prompts."""
        with self._lock:
            key = self._weights_key()
            if self._params is None or key != self._params_key:
                self._params, self._params_key = model_params(self.module), key
            return trace_text(self.module, self.tokenizer, text, model_name=self.name,
                              params=self._params, weights_version=self.weights_version)

    def generate(self, prompt: str, n: int, *, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None) -> str:
        """Sample ``n`` characters after ``prompt`` (unknown characters in it are skipped). Returns
        only the new characters. The same seed gives the same text."""
        enc = self.tokenizer.encode_lenient(prompt)
        ids = list(enc.ids) or [0]  # an empty context starts from token 0, as the lecture does
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with self._lock, torch.inference_mode():
            self.module.eval()
            out = self.module.generate(torch.tensor([ids]), n, temperature=temperature, top_k=top_k,
                                       top_p=top_p, generator=gen)
        return self.tokenizer.decode(out[0, len(ids):].tolist())

    def _weights_key(self) -> tuple[int, ...]:
        # torch bumps a tensor's version counter on every in-place change (optimizer steps,
        # load_state_dict, p.copy_()), so the cached numpy copies of the weights are refreshed when
        # a script edits the weights between traces
        return tuple(p._version for p in self._param_list)

    # ---- weights ------------------------------------------------------------------------------
    def state_snapshot(self) -> dict[str, torch.Tensor]:
        """A detached copy of the weights, safe to hand to another thread."""
        with self._lock:
            return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def load_snapshot(self, state: Mapping[str, torch.Tensor]) -> None:
        """Swap in weights of the same shapes (for example a training snapshot)."""
        with self._lock:
            self.module.load_state_dict(state, strict=True)
            self.module.eval()
            self._params = None
            self.weights_version += 1

    def save(self, path: str | Path, *, info: Mapping[str, Any] | None = None) -> Path:
        """Write the native ``.safetensors`` format atomically (temp file, then rename)."""
        from .checkpoints import save_native

        merged = dict(self.info)
        if info:
            merged.update(info)
        with self._lock:
            return save_native(path, self.module, self.vocab, info=merged)

    @classmethod
    def untrained(cls, config: GPTConfig, vocab, *, seed: int = 0, name: str = "untrained") -> "ExplorerModel":
        """A freshly initialised model (N(0, 0.02) weights), for experiments and tests."""
        torch.manual_seed(seed)
        return cls(GPT(config), vocab, name=name)
