"""A plain-data description of a loaded GPT, for the architecture navigator (no Qt here).

``describe(module)`` walks the torch module tree exactly as ``print(model)`` shows it and returns a
nested dict per module::

    {"path": "blocks.0.sa", "name": "sa", "cls": "CausalSelfAttention",
     "tensors": [{"name": "qkv.weight", "shape": (384, 128), "numel": 49152, "kind": "param",
                  "note": "..."}, ...],          # the module's own weights and buffers
     "n_params": 65536,                           # parameters in this subtree, each counted once
     "io": "(B, T, 128) → (B, T, 128)",           # what goes in and comes out, with this model's sizes
     "explain": "plain-language text with the real numbers",
     "select": {"layer": 0} | None,               # what clicking this node selects in every view
     "children": [...]}

Shapes are read from the parameters themselves, so they are the truth: ``lm_head.weight`` is
``(vocab_size, n_embd)`` because ``nn.Linear`` stores ``(out_features, in_features)`` and computes
``x @ W.T + b``. A tied ``lm_head.weight`` (nanoGPT) is the same tensor as the token embedding table
and is said so, and counted once. The heads of a layer live inside one ``qkv`` Linear (all heads
computed in one matmul); each head appears as a child of ``sa`` with its slices of that matrix.

``select`` uses the GUI's layer numbering: -1 for the embeddings, 0..n_layer-1 for the blocks, and
n_layer for ``ln_f`` / ``lm_head``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

EMBED = -1  # the embeddings' layer number in the shared selection


def _shape(t) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _unique_numel(params) -> int:
    seen, total = set(), 0
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def describe(module: nn.Module) -> dict[str, Any]:
    """The whole model as nested plain dicts (see the module docstring)."""
    cfg = module.config
    tied = (getattr(module, "lm_head", None) is not None
            and module.lm_head.weight is module.token_embedding_table.weight)
    ctx = {"cfg": cfg, "tied": tied, "L": cfg.n_layer}
    root = _node(module, "", "model", ctx)
    root["explain"] = _explain_root(cfg, root["n_params"], tied)
    root["io"] = f"(B, T) token ids → (B, T, {cfg.vocab_size}) logits"
    return root


def _node(mod: nn.Module, path: str, name: str, ctx: dict) -> dict[str, Any]:
    tensors = []
    for pname, p in mod.named_parameters(recurse=False):
        full = f"{path}.{pname}" if path else pname
        note = ""
        if ctx["tied"] and full == "lm_head.weight":
            note = "tied: the same tensor as token_embedding_table.weight (stored and counted once)"
        tensors.append({"name": pname, "shape": _shape(p), "numel": int(p.numel()), "kind": "param",
                        "note": note})
    for bname, b in mod.named_buffers(recurse=False):
        tensors.append({"name": bname, "shape": _shape(b), "numel": int(b.numel()), "kind": "buffer",
                        "note": "a fixed buffer, not learned"})
    children = [_node(child, f"{path}.{cname}" if path else cname, cname, ctx)
                for cname, child in mod.named_children()]
    if type(mod).__name__ == "CausalSelfAttention":
        block = int(path.split(".")[1])
        children = [_head_node(mod, path, block, h, ctx) for h in range(mod.n_head)] + children
    node = {
        "path": path, "name": name, "cls": type(mod).__name__, "tensors": tensors,
        "n_params": _unique_numel(mod.parameters()), "children": children,
        "io": _io(mod, path, ctx), "select": _select(path, ctx), "explain": "",
    }
    node["explain"] = _explain(mod, path, ctx)
    return node


def _head_node(sa: nn.Module, path: str, block: int, h: int, ctx: dict) -> dict[str, Any]:
    C, hs = sa.n_embd, sa.head_size
    rows = {"query": (h * hs, (h + 1) * hs), "key": (C + h * hs, C + (h + 1) * hs),
            "value": (2 * C + h * hs, 2 * C + (h + 1) * hs)}
    tensors = []
    for kind, (a, b) in rows.items():
        tensors.append({"name": f"{kind}.weight", "shape": (hs, C), "numel": hs * C, "kind": "slice",
                        "note": f"rows {a}:{b} of qkv.weight"})
        if sa.qkv.bias is not None:
            tensors.append({"name": f"{kind}.bias", "shape": (hs,), "numel": hs, "kind": "slice",
                            "note": f"entries {a}:{b} of qkv.bias"})
    n = sum(t["numel"] for t in tensors)
    scale = hs ** -0.5
    explain = (
        f"Head {h} of block {block}: one of {sa.n_head} attention heads working side by side, each of "
        f"size head_size = n_embd / n_head = {C} / {sa.n_head} = {hs}. From every token's vector "
        f"(length {C}) it makes a query ('what am I looking for?'), a key ('what do I contain?') and "
        f"a value ('what I pass on'), each of length {hs}. Each position scores every earlier position "
        f"by query · key × {scale:.3f} (that is head_size^-0.5), hides the future (the causal mask), "
        f"turns the scores into weights with softmax, and takes the weighted average of the values. "
        f"In this code all heads are computed in one matmul, so the head's weights are slices of "
        f"qkv.weight; in the lecture's code they are Head {h}'s key, query and value Linear layers. "
        f"Clicking selects this head in every view.")
    return {"path": f"{path}.heads.{h}", "name": f"head {h}", "cls": "Head",
            "tensors": tensors, "n_params": n, "children": [],
            "io": f"(B, T, {C}) → (B, T, {hs})", "select": {"layer": block, "head": h}, "explain": explain}


def _block_of(path: str) -> int | None:
    parts = path.split(".")
    if len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1])
    return None


def _select(path: str, ctx: dict) -> dict | None:
    L = ctx["L"]
    if path in ("token_embedding_table", "position_embedding_table", "drop"):
        return {"layer": EMBED}
    if path in ("", "blocks"):
        return None
    if path == "ln_f":
        return {"layer": L, "ln_site": "ln_final"}
    if path == "lm_head":
        return {"layer": L}
    i = _block_of(path)
    if i is None:
        return None
    for ln in ("ln1", "ln2"):
        if path == f"blocks.{i}.{ln}":
            return {"layer": i, "ln_site": f"blocks.{i}.{ln}"}
    return {"layer": i}


def _io(mod: nn.Module, path: str, ctx: dict) -> str:
    cfg = ctx["cfg"]
    C = cfg.n_embd
    if path == "token_embedding_table":
        return f"(B, T) token ids → (B, T, {C})"
    if path == "position_embedding_table":
        return f"(T,) positions 0..T-1 → (T, {C})"
    if isinstance(mod, nn.Linear):
        return f"(B, T, {mod.in_features}) → (B, T, {mod.out_features})"
    if isinstance(mod, nn.Embedding):
        return f"(B, T) → (B, T, {mod.embedding_dim})"
    if isinstance(mod, (nn.ReLU, nn.GELU)):
        return f"(B, T, {4 * C}) → (B, T, {4 * C})"
    if isinstance(mod, (nn.LayerNorm, nn.Dropout, nn.Sequential)) or type(mod).__name__ in (
            "Block", "CausalSelfAttention", "FeedForward"):
        return f"(B, T, {C}) → (B, T, {C})"
    return ""


def _explain_root(cfg, n_params: int, tied: bool) -> str:
    fam = ("nanoGPT's GPT (GELU, lm_head tied to the token embedding)" if cfg.family == "nanogpt"
           else "the lecture's GPTLanguageModel (ReLU, its own lm_head with a bias)")
    return (f"The whole model: {fam}. {n_params:,} parameters. It reads up to block_size = "
            f"{cfg.block_size} characters, turns each into a vector of n_embd = {cfg.n_embd} numbers, "
            f"refines those vectors through {cfg.n_layer} blocks of attention and feed-forward layers, "
            f"and ends with a score (logit) for each of the {cfg.vocab_size} characters that could come "
            f"next." + (" The output layer reuses the token embedding table (tied weights)." if tied else ""))


def _explain(mod: nn.Module, path: str, ctx: dict) -> str:
    cfg = ctx["cfg"]
    C, V, T, L, H = cfg.n_embd, cfg.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_head
    i = _block_of(path)
    last = path.rsplit(".", 1)[-1]
    if path == "token_embedding_table":
        return (f"A lookup table with one row of {C} learned numbers per character ({V} rows). Each "
                f"character of the prompt is replaced by its row: this vector is everything the model "
                f"knows about the character by itself. nn.Embedding stores it as weight ({V}, {C})."
                + (" The same table is used again, transposed, by lm_head (tied weights)." if ctx["tied"] else ""))
    if path == "position_embedding_table":
        return (f"A second table, one row of {C} numbers per position 0..{T - 1}. Its row is added to the "
                f"character's vector, so the model can tell 'the first character' from 'the tenth'. "
                f"This is why the model cannot read more than block_size = {T} characters at once.")
    if path == "drop":
        return "Dropout after the embeddings: during training it zeroes random numbers to fight overfitting; " \
               "while tracing it does nothing."
    if path == "blocks":
        return (f"An nn.Sequential of {L} identical-looking blocks, applied one after another. Each block "
                f"reads the running vectors (the residual stream: {C} numbers per token, (T, {C}) for a "
                f"T-character prompt) and adds what it computed back onto them.")
    if i is not None and path == f"blocks.{i}":
        return (f"Block {i}: x = x + sa(ln1(x)); then x = x + ffwd(ln2(x)). First the tokens talk to "
                f"each other (attention), then each token thinks on its own (feed-forward). The '+' "
                f"keeps a residual path, so each block adds a correction instead of replacing x. "
                f"Clicking selects block {i} in every view.")
    if last in ("ln1", "ln2") and i is not None:
        which = "attention" if last == "ln1" else "feed-forward"
        return (f"LayerNorm before the {which} of block {i}: for each token it subtracts the mean of "
                f"its {C} numbers and divides by their standard deviation (plus ε = 1e-5), then "
                f"multiplies by a learned gain γ and adds a learned bias β (weight and bias, ({C},) each). "
                f"This keeps the numbers in a steady range however deep the model is. Clicking selects "
                f"this LayerNorm in every view.")
    if last == "sa" and i is not None:
        return (f"Multi-head causal self-attention of block {i} ({H} heads of size {cfg.head_size}; the "
                f"lecture calls it MultiHeadAttention). Each position gathers information from earlier "
                f"positions. qkv.weight ({3 * C}, {C}) makes the queries, keys and values of all heads "
                f"in one matmul; proj ({C}, {C}) mixes the heads' outputs back into the residual stream. "
                f"The mask buffer is the lower-triangular 'tril' that hides the future.")
    if last == "qkv":
        return (f"One nn.Linear making queries, keys and values for all {H} heads at once: weight is "
                f"({3 * C}, {C}) = (out, in), rows [queries of heads 0..{H - 1} | keys | values]. "
                f"y = x @ W.T" + (" + b." if mod.bias is not None else " (no bias, as in the lecture)."))
    if last == "proj":
        return (f"The output projection: the {H} heads' outputs, concatenated to {C} numbers, are "
                f"mixed by this nn.Linear (weight ({C}, {C})) before being added to the residual stream.")
    if last in ("resid_drop", "attn_drop"):
        return "Dropout (active only while training; does nothing while tracing)."
    if last == "ffwd":
        act = "ReLU" if cfg.activation == "relu" else "GELU"
        return (f"The feed-forward network of block {i}: each token on its own goes through "
                f"Linear({C} → {4 * C}), {act}, Linear({4 * C} → {C}). This is where a token 'thinks' "
                f"about what it gathered by attention.")
    if path.endswith("ffwd.net"):
        return "The feed-forward layers as an nn.Sequential: expand, non-linearity, project back, dropout."
    if isinstance(mod, nn.Linear) and path.endswith("net.0"):
        return (f"Expands each token's vector from {C} to {4 * C} numbers. weight ({4 * C}, {C}) is "
                f"stored as (out_features, in_features); y = x @ W.T + b.")
    if isinstance(mod, nn.Linear) and path.endswith("net.2"):
        return (f"Projects the {4 * C} numbers back to {C}, the width of the residual stream. weight "
                f"({C}, {4 * C}) = (out_features, in_features).")
    if isinstance(mod, nn.ReLU):
        return "ReLU: keeps positive numbers and sets negative ones to 0. Without a non-linearity the " \
               "two Linear layers would collapse into one."
    if isinstance(mod, nn.GELU):
        return "GELU: a smooth ReLU (nanoGPT and GPT-2 use it). The non-linearity between the two Linear layers."
    if isinstance(mod, nn.Dropout):
        return "Dropout (active only while training; does nothing while tracing)."
    if path == "ln_f":
        return (f"The final LayerNorm, after the last block and before lm_head: it normalises each token's "
                f"{C} numbers once more. Clicking selects it in every view.")
    if path == "lm_head":
        b = " + b" if mod.bias is not None else ""
        tie = (" Its weight is the token embedding table itself (tied), so a character's score is how "
               "well the final vector matches that character's embedding.") if ctx["tied"] else ""
        return (f"The language-model head: an nn.Linear from {C} to {V}. It stores weight as "
                f"(out_features, in_features) = ({V}, {C}) and computes logits = x @ W.T{b}: one score "
                f"per character, the dot product of the final vector with that character's row of W"
                f"{' plus its bias' if b else ''}. Softmax turns the scores into next-character "
                f"probabilities.{tie} Clicking selects the output in every view.")
    return ""


def iter_nodes(node: dict[str, Any]):
    """Every node of a description, depth first (the root first)."""
    yield node
    for child in node["children"]:
        yield from iter_nodes(child)
