"""The GPT itself: a config dataclass and one module that covers both checkpoint families.

* The lecture's ``GPTLanguageModel`` ("GPT from scratch"): learned token and position embeddings,
  an ``nn.Sequential`` of pre-LayerNorm blocks (multi-head causal self-attention, then a ReLU
  feed-forward of width 4·n_embd), ``ln_f`` and an untied ``lm_head`` Linear with a bias.
* nanoGPT's ``GPT``: the same skeleton with GELU, optional biases and ``lm_head`` tied to the
  token embedding.

All heads of a layer are computed together: one ``qkv`` Linear produces queries, keys and values
of every head in one matmul (nanoGPT's layout: ``[q | k | v]``, each split into heads of
``head_size`` consecutive channels). The lecture's per-head ``key/query/value`` weights are stacked
into that layout when a lecture checkpoint is loaded (see ``checkpoints.py``).

``forward(idx, targets)`` is the plain pass (batches, training, generation); attention runs
through PyTorch's fused ``scaled_dot_product_attention`` there. ``record(idx)`` is the inference
pass of one sequence that keeps every intermediate activation under TransformerLens's names
(``blocks.0.attn.hook_pattern`` ...) in a ``Recording``. It works on ``(T, C)`` tensors without a
batch dimension and computes attention explicitly, so the pattern can be kept. The numbers are the
same either way, up to float rounding.

Dropout on the CPU draws its mask from 16 random bits per element (``Dropout`` below), several
times faster than ``nn.Dropout``'s ``bernoulli_``, which PyTorch runs one element at a time on
every CPU but Intel's (where it calls MKL). Training with dropout therefore computes attention explicitly too
(PyTorch's fused kernel would draw its own mask the slow way).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
from torch.nn import functional as F

ACTIVATIONS = ("relu", "gelu")
ATTN_SLICE_BYTES = 16 << 20  # big (B, H, T, T) and (B, T, 4C) tensors are computed in slices of at most this


@dataclass
class GPTConfig:
    """Shape and flavour of a GPT. The defaults are the bundled model's: the lecture architecture at
    4 layers, 4 heads, 128 dims, 128 positions."""

    vocab_size: int = 65
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in LayerNorms, attention output, feed-forward
    activation: str = "relu"  # "relu" (lecture) | "gelu" (nanoGPT)
    tie_weights: bool = False  # lm_head.weight is token_embedding_table.weight (nanoGPT)
    qkv_bias: bool = False  # the lecture's key/query/value have no bias; nanoGPT's c_attn follows `bias`
    lm_head_bias: bool = True  # the lecture's lm_head has a bias; nanoGPT's never does

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def lecture(cls, **overrides) -> "GPTConfig":
        """The lecture's GPTLanguageModel: ReLU, untied lm_head with bias, no qkv bias."""
        base = dict(bias=True, activation="relu", tie_weights=False, qkv_bias=False, lm_head_bias=True)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def nanogpt(cls, bias: bool = True, **overrides) -> "GPTConfig":
        """nanoGPT's GPT: GELU, biases everywhere or nowhere, lm_head tied and without bias."""
        base = dict(bias=bias, activation="gelu", tie_weights=True, qkv_bias=bias, lm_head_bias=False)
        base.update(overrides)
        return cls(**base)

    @property
    def family(self) -> str:
        """"nanogpt" for GELU models (nanoGPT's, tied or not), "lecture" for ReLU ones."""
        return "nanogpt" if self.activation == "gelu" else "lecture"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown GPTConfig fields: {sorted(unknown)}")
        return cls(**data)


def dropout_mask_threshold(p: float) -> int:
    """An int16 uniform in [-32768, 32767] is below this with probability ``round(p·65536) / 65536``."""
    return int(round(p * 65536)) - 32768


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout: zero each element with probability p, scale the rest by 1 / (1 − p).

    On the CPU the mask comes from ``int64.random_()`` (64 random bits per call, cut into four
    int16 lanes) compared with a threshold, so p is rounded to a multiple of 1/65536 (0.1 becomes
    0.100006) and the scale uses that rounded p, keeping the expected output equal to x. It draws
    from torch's default generator, so ``torch.manual_seed`` and saved RNG states replay it exactly.
    Other devices use ``F.dropout`` (fused on GPUs)."""
    if p <= 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    threshold = dropout_mask_threshold(p)
    p_used = (threshold + 32768) / 65536
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # the full 64-bit range
    drop = bits.view(torch.int16)[:n].view(x.shape) < threshold
    return (x * (1.0 / (1.0 - p_used))).masked_fill_(drop, 0.0)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with ``fast_dropout``'s mask in training (identity in eval mode, as always)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return fast_dropout(x, self.p)


class Recording:
    """Receives what ``GPT.record`` computes, in forward order, while it is still in cache.

    This base class keeps every activation tensor in ``acts`` under its TransformerLens name
    ((T, C), (H, T, T) ... without a batch dimension). A subclass can turn each one into what it
    needs as it arrives (the trace makes read-only numpy views and computes its statistics here):

    * ``keep(name, t)``: one activation;
    * ``layernorm(site, out, mean, rstd)``: a LayerNorm site (``blocks.0.ln1`` ... ``ln_final``) with
      its output (T, C) and its input's per-token mean and 1/sqrt(σ² + ε) (T, 1), which the kernel
      computes anyway; by default it keeps ``hook_scale`` = sqrt(σ² + ε) and ``hook_normalized``;
    * ``residual(depth, x)``: the residual stream (T, C) after ``depth`` blocks, 0 to n_layer."""

    def __init__(self) -> None:
        self.acts: dict[str, torch.Tensor] = {}

    def keep(self, name: str, t: torch.Tensor) -> None:
        self.acts[name] = t

    def layernorm(self, site: str, out: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor) -> None:
        self.keep(site + ".hook_scale", rstd.reciprocal())  # (T, 1)
        self.keep(site + ".hook_normalized", out)  # (T, C)

    def residual(self, depth: int, x: torch.Tensor) -> None:
        pass


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` with an optional bias (nanoGPT's ``bias=False`` models have none)."""

    def __init__(self, n_embd: int, bias: bool) -> None:
        super().__init__(n_embd, eps=1e-5, elementwise_affine=True, bias=bias)

    def record(self, x: torch.Tensor, r: "Recording", site: str) -> torch.Tensor:
        # TransformerLens: hook_scale = sqrt(var + eps) per token; hook_normalized = the output (after γ, β).
        # native_layer_norm is the kernel F.layer_norm runs; it also returns the input's mean and
        # 1/sqrt(var + eps), so the scale and the input statistics cost nothing extra (a separate
        # x.var() would cost more than the LayerNorm itself).
        out, mean, rstd = torch.native_layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        r.layernorm(site, out, mean, rstd)  # (T, C), (T, 1), (T, 1)
        return out


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with every head in one batched matmul."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.n_embd = cfg.n_embd
        self.head_size = cfg.head_size
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.qkv_bias)  # [q | k | v], heads contiguous
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_drop = Dropout(cfg.dropout)
        self.attn_drop = Dropout(cfg.dropout)
        # additive causal mask: 0 on and below the diagonal, -inf above it
        causal = torch.full((cfg.block_size, cfg.block_size), float("-inf")).triu(1)
        self.register_buffer("causal_bias", causal, persistent=False)  # (block_size, block_size)

    def _scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """q kᵀ · hs^-0.5 with -inf above the diagonal for (n, T, hs) heads → (n, T, T), in one batched
        matmul (baddbmm adds the mask and applies the scale inside the GEMM: no extra passes)."""
        T = q.shape[1]
        return torch.baddbmm(self.causal_bias[:T, :T], q, k.transpose(1, 2), alpha=self.head_size**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H, hs = self.n_head, self.head_size
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q = q.view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
        k = k.view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
        v = v.view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
        if not (self.training and self.dropout > 0.0):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hs)
            y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side, as torch.cat does
        else:  # training with dropout: the same computation, with our dropout mask
            qh, kh, vh = (t.reshape(B * H, T, hs) for t in (q, k, v))  # (B·H, T, hs) each
            # in slices of at most ATTN_SLICE_BYTES of scores: glibc hands larger blocks out as fresh
            # pages from the kernel every time, and faulting those in made each pass over a (B·H, T, T)
            # tensor several times slower than the arithmetic (lecture size: 100 MB per tensor)
            step = max(1, ATTN_SLICE_BYTES // (T * T * 4))
            ys = []
            for i in range(0, B * H, step):
                scores = self._scores(qh[i:i + step], kh[i:i + step])  # (n, T, T)
                pattern = self.attn_drop(F.softmax(scores, dim=-1))  # (n, T, T)
                ys.append(torch.bmm(pattern, vh[i:i + step]))  # (n, T, hs)
            y = (torch.cat(ys) if len(ys) > 1 else ys[0]).view(B, H, T, hs)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))

    def record(self, x: torch.Tensor, r: "Recording", name: str) -> torch.Tensor:
        """Inference pass of one sequence x (T, C) that keeps the scores, the pattern and z."""
        # (one sequence, so few and cheap tensor operations: F.linear rather than module calls, one view for q, k, v)
        T, C = x.shape
        H, hs = self.n_head, self.head_size
        qkv = F.linear(x, self.qkv.weight, self.qkv.bias)  # (T, 3C) = [q | k | v]
        q, k, v = qkv.view(T, 3, H, hs).permute(1, 2, 0, 3).unbind(0)  # (H, T, hs) each
        scores = self._scores(q, k)  # (H, T, T)
        pattern = F.softmax(scores, dim=-1)  # (H, T, T)
        z = torch.empty((T, H, hs), dtype=x.dtype, device=x.device)
        torch.bmm(pattern, v, out=z.transpose(0, 1))  # written straight into the (T, H, hs) layout
        r.keep(name + ".hook_attn_scores", scores)
        r.keep(name + ".hook_pattern", pattern)
        r.keep(name + ".hook_z", z)
        return F.linear(z.view(T, C), self.proj.weight, self.proj.bias)  # heads side by side, as torch.cat does


class FeedForward(nn.Module):
    """Linear(C, 4C) → ReLU or GELU → Linear(4C, C) → Dropout, as ``net`` (the lecture's indices 0 and 2)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        act = nn.ReLU() if cfg.activation == "relu" else nn.GELU()
        self.net = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias),
            act,
            nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias),
            Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # row by row, so in slices of the batch when the (B, T, 4C) hidden layer would be large
        # (see ATTN_SLICE_BYTES: fresh pages for big blocks make every pass over them slow)
        B, T, C = x.shape
        step = max(1, ATTN_SLICE_BYTES // (T * 4 * C * 4))
        if B <= step:
            return self.net(x)
        return torch.cat([self.net(x[i:i + step]) for i in range(0, B, step)])

    def record(self, x: torch.Tensor, r: "Recording", name: str) -> torch.Tensor:
        """Inference pass of one sequence x (T, C) that keeps the hidden layer before and after the activation."""
        fc, act, out = self.net[0], self.net[1], self.net[2]
        pre = F.linear(x, fc.weight, fc.bias)  # (T, 4C)
        post = act(pre)  # (T, 4C)
        r.keep(name + ".hook_pre", pre)
        r.keep(name + ".hook_post", post)
        return F.linear(post, out.weight, out.bias)


class Block(nn.Module):
    """One pre-LayerNorm transformer block: ``x = x + sa(ln1(x)); x = x + ffwd(ln2(x))``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = LayerNorm(cfg.n_embd, cfg.bias)
        self.sa = CausalSelfAttention(cfg)
        self.ln2 = LayerNorm(cfg.n_embd, cfg.bias)
        self.ffwd = FeedForward(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))

    def record(self, x: torch.Tensor, r: "Recording", name: str) -> torch.Tensor:
        """The same computation on one sequence x (T, C), keeping every intermediate in ``r``."""
        r.keep(name + ".hook_resid_pre", x)
        attn_out = self.sa.record(self.ln1.record(x, r, name + ".ln1"), r, name + ".attn")
        r.keep(name + ".hook_attn_out", attn_out)
        x = x + attn_out
        r.keep(name + ".hook_resid_mid", x)
        mlp_out = self.ffwd.record(self.ln2.record(x, r, name + ".ln2"), r, name + ".mlp")
        r.keep(name + ".hook_mlp_out", mlp_out)
        x = x + mlp_out
        r.keep(name + ".hook_resid_post", x)
        return x


class GPT(nn.Module):
    """The lecture's GPTLanguageModel, generalised to nanoGPT's variant by ``GPTConfig``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.token_embedding_table = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.position_embedding_table = nn.Embedding(cfg.block_size, cfg.n_embd)
        # nanoGPT drops out after the embeddings; the lecture's GPTLanguageModel does not
        self.drop = Dropout(cfg.dropout) if cfg.family == "nanogpt" else None
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = LayerNorm(cfg.n_embd, cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=cfg.lm_head_bias)
        if cfg.tie_weights:
            self.lm_head.weight = self.token_embedding_table.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # as the lecture and nanoGPT do: N(0, 0.02) weights, zero biases
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Parameters counted once (a tied lm_head is not counted twice)."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} exceeds block_size {self.config.block_size}")
        tok = self.token_embedding_table(idx)  # (B, T, C)
        pos = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C)
        x = tok + pos  # (B, T, C)
        if self.drop is not None:
            x = self.drop(x)
        x = self.blocks(x)
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
        return logits, loss

    @torch.inference_mode()
    def record(self, idx: torch.Tensor, r: Recording | None = None) -> tuple[torch.Tensor, Recording]:
        """The inference forward pass of one sequence ``idx`` (T,) that hands every activation to ``r``.

        Returns the logits (T, V) and the ``Recording`` (a plain one that keeps the tensors unless
        one is given). Dropout is never applied, whatever ``self.training`` says: this is the model
        as it predicts."""
        T = idx.shape[0]
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} exceeds block_size {self.config.block_size}")
        r = Recording() if r is None else r
        tok = F.embedding(idx, self.token_embedding_table.weight)  # (T, C)
        pos = self.position_embedding_table.weight[:T].clone()  # (T, C), a copy: the weights may change later
        r.keep("hook_embed", tok)
        r.keep("hook_pos_embed", pos)
        x = tok + pos  # (T, C)
        for i, block in enumerate(self.blocks):
            r.residual(i, x)
            x = block.record(x, r, f"blocks.{i}")
        r.residual(len(self.blocks), x)
        x = self.ln_f.record(x, r, "ln_final")
        return F.linear(x, self.lm_head.weight, self.lm_head.bias), r  # (T, V)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample ``max_new_tokens`` ids after ``idx`` (B, T), cropping the context to block_size
        as the lecture's ``generate`` does."""
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.config.block_size :]
            logits, _ = self(idx_cond)
            probs = sampling_probs(logits[:, -1, :], temperature, top_k, top_p)
            idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


def sampling_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """softmax(logits / T) restricted to the top-k and/or the nucleus of mass top_p, renormalised."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = logits / temperature
    if top_k is not None and top_k > 0 and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p  # mass of strictly more likely tokens
        sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def count_params(cfg: GPTConfig) -> int:
    """Parameter count of a model with this config, without building it."""
    C, V, L = cfg.n_embd, cfg.vocab_size, cfg.n_layer
    ln = C * (2 if cfg.bias else 1)
    attn = 3 * C * C + (3 * C if cfg.qkv_bias else 0) + C * C + (C if cfg.bias else 0)
    mlp = 2 * 4 * C * C + ((4 * C + C) if cfg.bias else 0)
    head = (0 if cfg.tie_weights else V * C) + (V if cfg.lm_head_bias else 0)
    return V * C + cfg.block_size * C + L * (2 * ln + attn + mlp) + ln + head

