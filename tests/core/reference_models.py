"""Independent reference implementations for the core tests, written from the architectures'
definitions and sharing no code with ``explorer``:

* ``LectureGPT``: the lecture's GPTLanguageModel ("GPT from scratch"), one ``Head`` module per head
  with its own key/query/value ``Linear``, heads joined with ``torch.cat``, ``proj``, a ReLU
  ``FeedForward`` of width 4·n_embd, pre-LayerNorm blocks, ``ln_f`` and an untied ``lm_head``.
* ``NanoGPT``: nanoGPT's GPT: fused ``c_attn``, GELU MLP, optional biases, ``lm_head`` tied to
  ``wte``, attention computed by hand with the old ``attn.bias`` mask buffer.

Plus helpers that write the files users have: a lecture ``state_dict``, a nanoGPT ``ckpt.pt`` with
``model_args`` and ``meta.pkl``.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F


# ---- the lecture's GPTLanguageModel -----------------------------------------------------------
class Head(nn.Module):
    """one head of self-attention"""

    def __init__(self, n_embd, head_size, block_size):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        v = self.value(x)  # (B, T, hs)
        return wei @ v  # (B, T, hs)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_embd, num_heads, block_size):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, n_embd // num_heads, block_size) for _ in range(num_heads)])
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, C)
        return self.proj(out)


class FeedForward(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(0.0))

    def forward(self, x):
        return self.net(x)


class LectureBlock(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.sa = MultiHeadAttention(n_embd, n_head, block_size)
        self.ffwd = FeedForward(n_embd)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x


class LectureGPT(nn.Module):
    def __init__(self, vocab_size, n_embd, n_head, n_layer, block_size):
        super().__init__()
        self.block_size = block_size
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[LectureBlock(n_embd, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx):
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T))  # (T, C)
        x = self.blocks(tok_emb + pos_emb)  # (B, T, C)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    @torch.no_grad()
    def greedy(self, idx, max_new_tokens):
        """The lecture's generate() with argmax instead of sampling (context cropped to block_size)."""
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.block_size:])
            idx = torch.cat((idx, logits[:, -1, :].argmax(-1, keepdim=True)), dim=1)
        return idx


# ---- nanoGPT's GPT ----------------------------------------------------------------------------
class NanoLayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's had no bias=False when nanoGPT was written)."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class NanoAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size, bias):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.n_head, self.n_embd = n_head, n_embd
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class NanoMLP(nn.Module):
    def __init__(self, n_embd, bias):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class NanoBlock(nn.Module):
    def __init__(self, n_embd, n_head, block_size, bias):
        super().__init__()
        self.ln_1 = NanoLayerNorm(n_embd, bias)
        self.attn = NanoAttention(n_embd, n_head, block_size, bias)
        self.ln_2 = NanoLayerNorm(n_embd, bias)
        self.mlp = NanoMLP(n_embd, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class NanoGPT(nn.Module):
    def __init__(self, vocab_size, n_embd, n_head, n_layer, block_size, bias=True, tied=True):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([NanoBlock(n_embd, n_head, block_size, bias) for _ in range(n_layer)]),
            ln_f=NanoLayerNorm(n_embd, bias),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        if tied:
            self.transformer.wte.weight = self.lm_head.weight
        self.model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size, bias=bias,
                               vocab_size=vocab_size, dropout=0.0)

    def forward(self, idx):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


# ---- weights and files ------------------------------------------------------------------------
def randomize_reference(module: nn.Module, seed: int = 0, scale: float = 0.2) -> None:
    """Random non-trivial weights: LayerNorm gains around 1 ± 0.5, everything else N(0, scale²)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 2)
            if name.endswith(".weight") and any(s in ("ln1", "ln2", "ln_f", "ln_1", "ln_2") for s in leaf[:-1]):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g))


def save_nanogpt(folder: Path, model: NanoGPT, *, compiled: bool = False, dataset: str = "tiny_char",
                 name: str = "ckpt.pt") -> Path:
    """Write ``ckpt.pt`` as nanoGPT's train.py does, with an AdamW state of the shape
    ``optimizer.state_dict()`` gives after a step (built by hand: a real step imports torch._dynamo,
    which takes many seconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    params = list(model.parameters())
    optimizer = {
        "state": {i: {"step": torch.tensor(250.0), "exp_avg": torch.randn_like(p.detach()) * 1e-3,
                      "exp_avg_sq": torch.rand_like(p.detach()) * 1e-6} for i, p in enumerate(params)},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1, "amsgrad": False,
                          "foreach": None, "maximize": False, "capturable": False, "differentiable": False,
                          "fused": None, "params": list(range(len(params)))}],
    }
    sd = model.state_dict()
    if compiled:
        sd = {"_orig_mod." + k: v for k, v in sd.items()}
    ckpt = {"model": sd, "optimizer": optimizer, "model_args": dict(model.model_args), "iter_num": 250,
            "best_val_loss": torch.tensor(1.4697), "config": {"dataset": dataset, "batch_size": 64, "compile": compiled}}
    path = folder / name
    torch.save(ckpt, path)
    return path


def write_meta(path: Path, chars: list[str]) -> Path:
    """nanoGPT's data/<dataset>/meta.pkl: {vocab_size, itos, stoi}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                     "stoi": {ch: i for i, ch in enumerate(chars)}}, f)
    return path
