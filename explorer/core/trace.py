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

Derived figures the views need, computed in the same call:

* ``ln_stats[site]`` for every LayerNorm (``ln_sites``): per token, the mean, population std and
  norm of its input and the mean and std of its output, plus its gain and bias vectors;
* ``logit_lens`` ``(n_layer + 1, T, V)``: ``lm_head(ln_f(·))`` of the embedding output and of every
  block's output; the last row is the model's logits;
* ``params``: read-only copies of the embeddings, ``lm_head`` and every LayerNorm's gain and bias.

Recording does not change the numbers: ``logits`` equals the plain forward's up to float rounding
(the plain forward uses PyTorch's fused attention, the recorded one computes the pattern).

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

import ctypes
import platform
import time
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import numpy as np
import torch

from .model import GPT, GPTConfig, Recording
from .stats import LN_EPS, LayerNormStats
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
    """Read-only numpy copies of the weights the views explain: the embeddings, ``lm_head``, and the
    gain and bias of every LayerNorm (state-dict names: ``blocks.0.ln1.weight`` ... ``ln_f.bias``)."""
    names = ["token_embedding_table.weight", "position_embedding_table.weight", "lm_head.weight", "lm_head.bias"]
    names += [f"{m}.{p}" for m in ln_modules(module.config.n_layer) for p in ("weight", "bias")]
    sd = module.state_dict()
    out = {}
    for n in names:
        t = sd.get(n)
        if t is not None:
            out[n] = _frozen(t.detach().to(torch.float32).cpu().numpy().copy())
    return out


def ln_modules(n_layer: int) -> list[str]:
    """The state-dict prefix of each LayerNorm, in the order of ``ln_sites``: blocks.0.ln1, …, ln_f."""
    return ln_sites(n_layer)[:-1] + ["ln_f"]


def _ln_vectors(params: Mapping[str, np.ndarray], prefix: str, C: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain and bias of one LayerNorm (a LayerNorm without bias reports zeros)."""
    bias = params.get(prefix + ".bias")
    return params[prefix + ".weight"], bias if bias is not None else _frozen(np.zeros(C, np.float32))


class _TraceRecording(Recording):
    """Turns what ``GPT.record`` hands over into what a Trace holds, in as few tensor operations as
    possible: on a CPU each one costs several microseconds more than its arithmetic once a trace
    has filled the caches, so the statistics are gathered per site and computed in one go.

    * Activations become read-only numpy views as they arrive (no copies).
    * LayerNorm inputs: the forward's own kernel returns their mean and 1/sqrt(σ² + ε), so
      ``hook_scale`` and σ = sqrt(scale² − ε) (clamped at 0) need no pass over the activations.
    * LayerNorm outputs: the kernel runs once more on each (gain 1, bias 0, ε = 0), returning the
      output's mean and 1/std in one pass while the output is still in cache.
    * The logit lens ``lm_head(ln_f(x))`` of every residual stream but the last is one LayerNorm
      and one matmul over the stacked streams; its last row is the model's own logits."""

    def __init__(self, module: GPT) -> None:
        super().__init__()
        self.arrays: dict[str, np.ndarray | None] = {}
        self.sites: list[str] = []
        self.in_mean: list[torch.Tensor] = []  # per site, (T, 1), in forward order
        self.in_rstd: list[torch.Tensor] = []
        self.out_mean: list[torch.Tensor] = []
        self.out_rstd: list[torch.Tensor] = []
        self.residuals: list[torch.Tensor] = []  # (T, C) after 0 … n_layer − 1 blocks
        self._n_layer = module.config.n_layer
        self._unit = _unit_affine(module.config.n_embd)

    def keep(self, name: str, t: torch.Tensor) -> None:
        self.arrays[name] = _frozen(t.numpy())

    def layernorm(self, site: str, out: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor) -> None:
        self.arrays[site + ".hook_scale"] = None  # filled in by ln_stats(), keeping the forward order
        self.keep(site + ".hook_normalized", out)
        self.sites.append(site)
        self.in_mean.append(mean)
        self.in_rstd.append(rstd)
        _, out_mean, out_rstd = torch.native_layer_norm(out, out.shape[-1:], *self._unit, 0.0)
        self.out_mean.append(out_mean)
        self.out_rstd.append(out_rstd)  # a zero-variance row gives inf here, so std 0

    def residual(self, depth: int, x: torch.Tensor) -> None:
        if depth < self._n_layer:
            self.residuals.append(x)

    def logit_lens(self, module: GPT, logits: torch.Tensor) -> np.ndarray:
        L = len(self.residuals)
        T, V = logits.shape
        lens = torch.empty((L + 1, T, V))
        head = module.lm_head
        normed = module.ln_f(torch.stack(self.residuals)).view(L * T, -1)  # (L·T, C)
        out = lens[:L].view(L * T, V)
        if head.bias is None:
            torch.mm(normed, head.weight.t(), out=out)
        else:
            torch.addmm(head.bias, normed, head.weight.t(), out=out)
        lens[L] = logits
        return _frozen(lens.numpy())

    def ln_stats(self, params: Mapping[str, np.ndarray], C: int) -> dict[str, LayerNormStats]:
        """Per LayerNorm site: the input's mean, std and norm and the output's mean and std; also
        fills in every ``hook_scale``. Small (S, T) arrays, so plain numpy."""
        def by_site(columns: list[torch.Tensor]) -> np.ndarray:  # S tensors (T, 1) → a C-ordered (S, T) array
            return np.ascontiguousarray(torch.cat(columns, dim=1).numpy().T)

        in_mean = by_site(self.in_mean)
        scale = 1.0 / by_site(self.in_rstd)  # sqrt(σ² + ε)
        in_var = np.maximum(scale * scale - np.float32(LN_EPS), 0.0, dtype=np.float32)
        in_std = np.sqrt(in_var)
        in_norm = np.sqrt((in_var + in_mean * in_mean) * np.float32(C))  # ‖x‖ = sqrt(C·(σ² + μ²))
        out_mean = by_site(self.out_mean)
        out_std = 1.0 / by_site(self.out_rstd)
        for a in (in_mean, scale, in_std, in_norm, out_mean, out_std):
            a.flags.writeable = False  # rows and columns of a read-only array are read-only views
        n_layer = self._n_layer
        result = {}
        for j, (site, prefix) in enumerate(zip(self.sites, ln_modules(n_layer))):
            self.arrays[site + ".hook_scale"] = scale[j][:, None]  # (T, 1)
            gain, bias = _ln_vectors(params, prefix, C)
            result[site] = LayerNormStats(
                site=site, in_mean=in_mean[j], in_std=in_std[j], in_norm=in_norm[j],
                out_mean=out_mean[j], out_std=out_std[j], gain=gain, bias=bias, eps=LN_EPS,
            )
        return result


_UNIT_AFFINE: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


def _unit_affine(C: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gain 1 and bias 0 of width C: the LayerNorm kernel runs faster with an affine step than without."""
    unit = _UNIT_AFFINE.get(C)
    if unit is None:
        with torch.inference_mode():
            unit = _UNIT_AFFINE[C] = (torch.ones(C), torch.zeros(C))
    return unit


def _empty_trace_parts(cfg: GPTConfig, params: Mapping[str, np.ndarray]) -> dict:
    V, L = cfg.vocab_size, cfg.n_layer
    acts = {k: _frozen(np.zeros(s, np.float32)) for k, s in activation_shapes(cfg, 0).items()}
    empty = _frozen(np.zeros(0, np.float32))
    stats = {}
    for site, prefix in zip(ln_sites(L), ln_modules(L)):
        gain, bias = _ln_vectors(params, prefix, cfg.n_embd)
        stats[site] = LayerNormStats(site, empty, empty, empty, empty, empty, gain, bias, LN_EPS)
    return dict(
        logits=_frozen(np.zeros((0, V), np.float32)), probs=_frozen(np.zeros((0, V), np.float32)),
        acts=acts, ln_stats=stats, logit_lens=_frozen(np.zeros((L + 1, 0, V), np.float32)),
    )


_ALLOCATOR_TUNED = False


def _keep_freed_memory() -> None:
    """Let glibc reuse the memory of the previous trace instead of returning it to the OS.

    A trace keeps every activation alive (about 60 MB at the lecture size), so by default glibc
    serves its large tensors with fresh ``mmap`` pages and gives them back when the trace is freed;
    faulting those pages in again costs about a fifth of a lecture-size trace. Raising the mmap and
    trim thresholds once (32 MB and 256 MB) makes the next trace reuse them. No numbers change;
    on other C libraries this does nothing."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _recorded_parts(module: GPT, idx: torch.Tensor, params: Mapping[str, np.ndarray]) -> dict:
    """One recorded forward pass over ``idx`` (T,), turned into the read-only arrays of a Trace."""
    _keep_freed_memory()
    with torch.inference_mode():
        r = _TraceRecording(module)
        logits, _ = module.record(idx, r)  # (T, V)
        ln_stats = r.ln_stats(params, module.config.n_embd)
        return dict(
            acts=r.arrays, logits=_frozen(logits.numpy()), probs=_frozen(torch.softmax(logits, dim=-1).numpy()),
            ln_stats=ln_stats, logit_lens=r.logit_lens(module, logits),
        )


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
    params = dict(params) if params is not None else model_params(module)
    if T == 0:
        parts = _empty_trace_parts(cfg, params)
    else:  # GPT.record is the inference pass (no dropout) whatever module.training says
        parts = _recorded_parts(module, torch.tensor(ids_list, dtype=torch.long), params)
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
        params=MappingProxyType(params),
        config=cfg,
        vocab=tokenizer.vocab,
        model_name=model_name,
        weights_version=weights_version,
        elapsed_ms=(time.perf_counter() - t0) * 1000.0,
    )
