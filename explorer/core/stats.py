"""The small pieces of math the views explain, in plain numpy: LayerNorm statistics, softmax with
temperature, entropy, the logit lens and the ``nn.Linear`` decomposition.

These are the functions the panels show numbers from, and the tests check them against the
lecture's worked examples (``[1, 2, 3]`` → mean 2, std 0.816, ``[-1.225, 0, 1.225]``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LN_EPS = 1e-5


@dataclass(frozen=True)
class LayerNormStats:
    """Per-token statistics of one LayerNorm site. Arrays are ``(T,)`` except gain/bias ``(C,)``.

    ``in_*`` describe the input vector (the residual stream), ``out_*`` the output after
    normalisation and the affine step ``·γ + β``. Standard deviations are the population ones
    (divide by C), which is what LayerNorm uses.
    """

    site: str
    in_mean: np.ndarray
    in_std: np.ndarray
    in_norm: np.ndarray
    out_mean: np.ndarray
    out_std: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    eps: float = LN_EPS


def layernorm(x, gain=None, bias=None, eps: float = LN_EPS) -> np.ndarray:
    """LayerNorm over the last axis: ``(x − μ) / sqrt(σ² + ε) · γ + β``."""
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if gain is not None:
        y = y * np.asarray(gain)
    if bias is not None:
        y = y + np.asarray(bias)
    return y


def layernorm_stats(site: str, x_in, x_out, gain, bias, eps: float = LN_EPS) -> LayerNormStats:
    """Statistics of a LayerNorm site from its input ``(T, C)`` and output ``(T, C)``."""
    x_in = np.asarray(x_in, dtype=np.float64)
    x_out = np.asarray(x_out, dtype=np.float64)
    C = x_in.shape[-1]
    gain = np.asarray(gain, dtype=np.float32)
    bias = np.zeros(C, np.float32) if bias is None else np.asarray(bias, dtype=np.float32)
    return LayerNormStats(
        site=site,
        in_mean=x_in.mean(-1).astype(np.float32),
        in_std=x_in.std(-1).astype(np.float32),
        in_norm=np.linalg.norm(x_in, axis=-1).astype(np.float32),
        out_mean=x_out.mean(-1).astype(np.float32),
        out_std=x_out.std(-1).astype(np.float32),
        gain=gain,
        bias=bias,
        eps=eps,
    )


@dataclass(frozen=True)
class LayerNormExample:
    """The worked example for one vector: x → μ → σ → (x − μ)/σ → ·γ + β."""

    x: np.ndarray
    mean: float
    var: float
    std: float  # sqrt(var + eps), what LayerNorm divides by
    eps: float
    normalized: np.ndarray  # (x − μ) / std
    gain: np.ndarray
    bias: np.ndarray
    output: np.ndarray  # normalized · γ + β
    normalized_mean: float
    normalized_std: float
    sigma: float = float("nan")  # sqrt(var): the population std of x, without eps (the seed's 0.816)


def layernorm_example(x, gain=None, bias=None, eps: float = LN_EPS) -> LayerNormExample:
    x = np.asarray(x, dtype=np.float64)
    C = x.shape[-1]
    gain = np.ones(C) if gain is None else np.asarray(gain, dtype=np.float64)
    bias = np.zeros(C) if bias is None else np.asarray(bias, dtype=np.float64)
    mu = float(x.mean())
    var = float(x.var())
    std = float(np.sqrt(var + eps))
    normalized = (x - mu) / std
    return LayerNormExample(
        x=x, mean=mu, var=var, std=std, eps=eps, normalized=normalized, gain=gain, bias=bias,
        output=normalized * gain + bias,
        normalized_mean=float(normalized.mean()), normalized_std=float(normalized.std()), sigma=float(np.sqrt(var)),
    )


def linear(x, weight, bias=None) -> np.ndarray:
    """What ``nn.Linear`` computes: ``y = x @ W.T + b`` with ``W`` stored as (out_features, in_features)."""
    y = np.asarray(x, dtype=np.float64) @ np.asarray(weight, dtype=np.float64).T
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return y


@dataclass(frozen=True)
class LogitDecomposition:
    """One logit written out: ``logit = Σ_c x[c]·W[token, c] + b[token]``."""

    token: int
    logit: float
    contributions: np.ndarray  # (C,) x[c] * W[token, c]
    bias: float
    top_channels: tuple[int, ...]  # channels by |contribution|, largest first


def decompose_logit(x, weight, bias, token: int, top: int = 8) -> LogitDecomposition:
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)[token]
    contributions = x * w
    b = 0.0 if bias is None else float(np.asarray(bias)[token])
    order = np.argsort(-np.abs(contributions))[:top]
    return LogitDecomposition(
        token=int(token), logit=float(contributions.sum() + b), contributions=contributions,
        bias=b, top_channels=tuple(int(i) for i in order),
    )


def softmax(logits, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """softmax(logits / T), numerically stable."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def entropy(probs, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats; 0·log 0 counts as 0."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis)


def logit_lens(resid, ln_gain, ln_bias, w_head, b_head=None, eps: float = LN_EPS) -> np.ndarray:
    """``lm_head(ln_f(resid))`` for any stack of residual vectors ``(..., C)`` → ``(..., V)``."""
    return linear(layernorm(resid, ln_gain, ln_bias, eps), w_head, b_head)
