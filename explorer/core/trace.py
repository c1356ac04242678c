"""One recorded forward pass: the immutable ``Trace`` every view reads from.

``trace_text(module, tokenizer, text)`` encodes the prompt, runs the model once under
``torch.inference_mode()`` with recording on, and returns a frozen ``Trace`` of read-only numpy
arrays (batch dimension removed). Activation names follow TransformerLens::

    hook_embed (T, C)                 hook_pos_embed (T, C)
    blocks.{i}.hook_resid_pre (T, C)  blocks.{i}.hook_resid_mid (T, C)  blocks.{i}.hook_resid_post (T, C)
    blocks.{i}.ln1.hook_scale (T, 1)  blocks.{i}.ln1.hook_normalized (T, C)     (and ln2)
    blocks.{i}.attn.hook_attn_scores (H, T, T)   (masked entries are -inf)
    blocks.{i}.attn.hook_pattern (H, T, T)       blocks.{i}.attn.hook_z (T, H, hs)
    blocks.{i}.hook_attn_out (T, C)
    blocks.{i}.mlp.hook_pre (T, 4C)   blocks.{i}.mlp.hook_post (T, 4C)   blocks.{i}.hook_mlp_out (T, C)
    ln_final.hook_scale (T, 1)        ln_final.hook_normalized (T, C)

As in TransformerLens, ``hook_scale`` is ``sqrt(var + eps)`` and ``hook_normalized`` is the
LayerNorm's output after ``·γ + β``.

Awkward prompts:

* characters outside the vocabulary are left out of the forward pass and listed in
  ``Trace.unknown`` as ``(index in text, character)``;
* a prompt longer than ``block_size`` (after dropping unknown characters) is cropped to its last
  ``block_size`` characters, as the lecture's ``generate`` does; ``Trace.cropped`` says how many
  were dropped from the front;
* the empty prompt (or one with no known character) gives a trace with ``T = 0``: every per-token
  array has a leading dimension of 0, ``logits`` is ``(0, V)``, and no forward pass is run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import numpy as np
import torch

from .model import GPT, GPTConfig
from .stats import LayerNormStats
from .tokenizer import CharTokenizer, display_char


def ln_sites(n_layer: int) -> list[str]:
    """Every LayerNorm in the model, in forward order: blocks.0.ln1, blocks.0.ln2, …, ln_final."""
    return [f"blocks.{i}.{ln}" for i in range(n_layer) for ln in ("ln1", "ln2")] + ["ln_final"]


def ln_site_input(site: str, n_layer: int) -> str:
    """The activation a LayerNorm site reads: ln1 ← resid_pre, ln2 ← resid_mid, ln_final ← last resid_post."""
    if site == "ln_final":
        return f"blocks.{n_layer - 1}.hook_resid_post"
    block, ln = site.rsplit(".", 1)
    return f"{block}.hook_resid_pre" if ln == "ln1" else f"{block}.hook_resid_mid"


def activation_shapes(cfg: GPTConfig, T: int) -> dict[str, tuple[int, ...]]:
    """Every recorded activation name and its shape for a T-token prompt, in forward order."""
    C, H, hs = cfg.n_embd, cfg.n_head, cfg.head_size
    shapes: dict[str, tuple[int, ...]] = {"hook_embed": (T, C), "hook_pos_embed": (T, C)}
    for i in range(cfg.n_layer):
        b = f"blocks.{i}"
        shapes.update({
            f"{b}.hook_resid_pre": (T, C),
            f"{b}.ln1.hook_scale": (T, 1), f"{b}.ln1.hook_normalized": (T, C),
            f"{b}.attn.hook_attn_scores": (H, T, T), f"{b}.attn.hook_pattern": (H, T, T),
            f"{b}.attn.hook_z": (T, H, hs), f"{b}.hook_attn_out": (T, C),
            f"{b}.hook_resid_mid": (T, C),
            f"{b}.ln2.hook_scale": (T, 1), f"{b}.ln2.hook_normalized": (T, C),
            f"{b}.mlp.hook_pre": (T, 4 * C), f"{b}.mlp.hook_post": (T, 4 * C),
            f"{b}.hook_mlp_out": (T, C), f"{b}.hook_resid_post": (T, C),
        })
    shapes.update({"ln_final.hook_scale": (T, 1), "ln_final.hook_normalized": (T, C)})
    return shapes


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Trace:
    """Everything one forward pass computed, as read-only numpy arrays. ``T`` = number of tokens."""

    text: str  # the prompt as given
    tokens: tuple[str, ...]  # the traced characters, (T,)
    ids: np.ndarray  # (T,) int64
    positions: np.ndarray  # (T,) index of each traced token in `text`
    unknown: tuple[tuple[int, str], ...]  # characters left out: (index in text, char)
    cropped: int  # known characters dropped from the front to fit block_size
    logits: np.ndarray  # (T, V)
    probs: np.ndarray  # (T, V)
    acts: Mapping[str, np.ndarray]
    ln_stats: Mapping[str, LayerNormStats]  # per LayerNorm site, see ln_sites()
    logit_lens: np.ndarray  # (n_layer + 1, T, V): lm_head(ln_f(resid)) after the embedding and each block
    params: Mapping[str, np.ndarray]  # the weights the views explain (embeddings, ln_f, lm_head)
    config: GPTConfig
    vocab: tuple[str, ...]
    model_name: str = "model"
    weights_version: int = 0  # changes whenever the traced weights change (training snapshots)
    elapsed_ms: float = 0.0
    gen: int = 0  # request generation number, set by the GUI pipeline
    extra: Mapping[str, object] = field(default_factory=dict)

    # ---- convenience -------------------------------------------------------------------------
    @property
    def T(self) -> int:
        return len(self.tokens)

    @property
    def n_layer(self) -> int:
        return self.config.n_layer

    @property
    def ln_sites(self) -> list[str]:
        return ln_sites(self.config.n_layer)

    @property
    def was_cropped(self) -> bool:
        return self.cropped > 0

    @property
    def display_tokens(self) -> list[str]:
        """Tokens with whitespace made visible (⏎, ␣, ⇥)."""
        return [display_char(t) for t in self.tokens]

    def pattern(self, layer: int) -> np.ndarray:
        """Attention pattern of block ``layer``, (H, T, T)."""
        return self.acts[f"blocks.{layer}.attn.hook_pattern"]

    def scores(self, layer: int) -> np.ndarray:
        """Pre-softmax attention scores of block ``layer``, (H, T, T), -inf above the diagonal."""
        return self.acts[f"blocks.{layer}.attn.hook_attn_scores"]

    def resid(self, depth: int) -> np.ndarray:
        """Residual stream after ``depth`` blocks, (T, C): 0 = embedding output, L = last block's output."""
        if depth == 0:
            return self.acts["blocks.0.hook_resid_pre"] if self.n_layer else self.acts["ln_final.hook_normalized"]
        return self.acts[f"blocks.{depth - 1}.hook_resid_post"]

    def ln_input(self, site: str) -> np.ndarray:
        return self.acts[ln_site_input(site, self.n_layer)]

    def with_gen(self, gen: int) -> "Trace":
        return replace(self, gen=gen)


def model_params(module: GPT) -> dict[str, np.ndarray]:
    """Read-only numpy copies of the weights the views explain."""
    names = ["token_embedding_table.weight", "position_embedding_table.weight", "ln_f.weight", "ln_f.bias",
             "lm_head.weight", "lm_head.bias"]
    sd = module.state_dict()
    out = {}
    for n in names:
        t = sd.get(n)
        if t is not None:
            out[n] = _frozen(t.detach().to(torch.float32).cpu().numpy().copy())
    return out


def _ln_stats_all(rec: dict, module: GPT, L: int) -> dict[str, LayerNormStats]:
    sites = ln_sites(L)
    ins = torch.stack([rec[ln_site_input(s, L)][0] for s in sites])  # (S, T, C)
    outs = torch.stack([rec[f"{s}.hook_normalized"][0] for s in sites])  # (S, T, C)
    in_mean, in_std = ins.mean(-1), ins.std(-1, unbiased=False)
    in_norm = ins.norm(dim=-1)
    out_mean, out_std = outs.mean(-1), outs.std(-1, unbiased=False)
    lns = [module.blocks[int(s.split(".")[1])].ln1 if s.endswith("ln1") else
           module.blocks[int(s.split(".")[1])].ln2 if s.endswith("ln2") else module.ln_f for s in sites]
    result = {}
    for j, (site, ln) in enumerate(zip(sites, lns)):
        C = ln.normalized_shape[0]
        bias = ln.bias.detach().numpy().copy() if ln.bias is not None else np.zeros(C, np.float32)
        result[site] = LayerNormStats(
            site=site,
            in_mean=_frozen(in_mean[j].numpy()), in_std=_frozen(in_std[j].numpy()),
            in_norm=_frozen(in_norm[j].numpy()),
            out_mean=_frozen(out_mean[j].numpy()), out_std=_frozen(out_std[j].numpy()),
            gain=_frozen(ln.weight.detach().numpy().copy()), bias=_frozen(bias), eps=ln.eps,
        )
    return result


def _empty_trace_parts(module: GPT) -> dict:
    cfg = module.config
    V, L = cfg.vocab_size, cfg.n_layer
    acts = {k: _frozen(np.zeros(s, np.float32)) for k, s in activation_shapes(cfg, 0).items()}
    empty = _frozen(np.zeros(0, np.float32))
    stats = {}
    for site, ln in zip(ln_sites(L), [m for b in module.blocks for m in (b.ln1, b.ln2)] + [module.ln_f]):
        C = ln.normalized_shape[0]
        bias = ln.bias.detach().numpy().copy() if ln.bias is not None else np.zeros(C, np.float32)
        stats[site] = LayerNormStats(site, empty, empty, empty, empty, empty,
                                     _frozen(ln.weight.detach().numpy().copy()), _frozen(bias), ln.eps)
    return dict(
        logits=_frozen(np.zeros((0, V), np.float32)), probs=_frozen(np.zeros((0, V), np.float32)),
        acts=acts, ln_stats=stats, logit_lens=_frozen(np.zeros((L + 1, 0, V), np.float32)),
    )


@torch.inference_mode()
def record(module: GPT, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``module`` on ``ids`` (1, T) with recording on. Returns (logits (1, T, V), activations)."""
    rec: dict[str, torch.Tensor] = {}
    logits, _ = module(ids, rec=rec)
    return logits, rec


def trace_text(
    module: GPT,
    tokenizer: CharTokenizer,
    text: str,
    *,
    model_name: str = "model",
    params: Mapping[str, np.ndarray] | None = None,
    weights_version: int = 0,
) -> Trace:
    """Encode ``text`` leniently, crop to block_size, record one forward pass, return a ``Trace``."""
    t0 = time.perf_counter()
    if not isinstance(text, str):
        raise TypeError(f"prompt must be a str, got {type(text).__name__}")
    cfg = module.config
    enc = tokenizer.encode_lenient(text)
    ids_list, positions = list(enc.ids), list(enc.positions)
    cropped = max(0, len(ids_list) - cfg.block_size)
    if cropped:
        ids_list, positions = ids_list[cropped:], positions[cropped:]
    T = len(ids_list)
    was_training = module.training
    module.eval()
    try:
        if T == 0:
            parts = _empty_trace_parts(module)
        else:
            idx = torch.tensor([ids_list], dtype=torch.long)
            logits, rec = record(module, idx)
            with torch.inference_mode():
                L = cfg.n_layer
                acts = {}
                for name, t in rec.items():
                    acts[name] = _frozen((t if name == "hook_pos_embed" else t[0]).numpy())
                probs = torch.softmax(logits[0], dim=-1)
                resid = torch.stack([rec["blocks.0.hook_resid_pre"][0]] +
                                    [rec[f"blocks.{i}.hook_resid_post"][0] for i in range(L)])  # (L+1, T, C)
                lens = module.lm_head(module.ln_f(resid))  # (L+1, T, V)
                parts = dict(
                    logits=_frozen(logits[0].numpy()), probs=_frozen(probs.numpy()), acts=acts,
                    ln_stats=_ln_stats_all(rec, module, L), logit_lens=_frozen(lens.numpy()),
                )
    finally:
        module.train(was_training)
    return Trace(
        text=text,
        tokens=tuple(tokenizer.vocab[i] for i in ids_list),
        ids=_frozen(np.asarray(ids_list, dtype=np.int64)),
        positions=_frozen(np.asarray(positions, dtype=np.int64)),
        unknown=enc.unknown,
        cropped=cropped,
        logits=parts["logits"], probs=parts["probs"],
        acts=MappingProxyType(parts["acts"]),
        ln_stats=MappingProxyType(parts["ln_stats"]),
        logit_lens=parts["logit_lens"],
        params=MappingProxyType(dict(params) if params is not None else model_params(module)),
        config=cfg,
        vocab=tokenizer.vocab,
        model_name=model_name,
        weights_version=weights_version,
        elapsed_ms=(time.perf_counter() - t0) * 1000.0,
    )
