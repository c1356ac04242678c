"""``explorer.core.architecture.describe``: the navigator's description tells the truth about the
module tree, its shapes and parameter counts, for both families (no Qt here)."""
from __future__ import annotations

import torch

from explorer import ExplorerModel, GPTConfig
from explorer.core.architecture import describe, iter_nodes


def _model(family: str):
    vocab = list("\n !,.:abcdefghijklmnopqrstuvwxyz")
    make = GPTConfig.nanogpt if family == "nanogpt" else GPTConfig.lecture
    cfg = make(vocab_size=len(vocab), block_size=24, n_layer=3, n_head=4, n_embd=32)
    return ExplorerModel.untrained(cfg, vocab, seed=0)


def _by_path(desc):
    return {n["path"]: n for n in iter_nodes(desc)}


def test_every_tensor_shape_is_read_from_the_module():
    m = _model("lecture")
    nodes = _by_path(describe(m.module))
    params = dict(m.module.named_parameters())
    buffers = dict(m.module.named_buffers())
    seen = set()
    for path, node in nodes.items():
        for t in node["tensors"]:
            if t["kind"] == "slice":
                continue
            full = f"{path}.{t['name']}" if path else t["name"]
            ref = params.get(full) if t["kind"] == "param" else buffers.get(full)
            assert ref is not None, full
            assert t["shape"] == tuple(ref.shape) and t["numel"] == ref.numel(), full
            seen.add(full)
    assert seen >= set(params)  # every parameter appears in the tree


def test_lm_head_is_out_by_in_as_nn_linear_stores_it():
    m = _model("lecture")
    cfg = m.config
    lm = _by_path(describe(m.module))["lm_head"]
    shapes = {t["name"]: t["shape"] for t in lm["tensors"]}
    assert shapes == {"weight": (cfg.vocab_size, cfg.n_embd), "bias": (cfg.vocab_size,)}
    assert "x @ W.T" in lm["explain"] and f"({cfg.vocab_size}, {cfg.n_embd})" in lm["explain"]
    assert lm["io"] == f"(B, T, {cfg.n_embd}) → (B, T, {cfg.vocab_size})"
    assert lm["select"] == {"layer": cfg.n_layer}


def test_parameter_counts_add_up():
    m = _model("lecture")
    desc = describe(m.module)
    assert desc["n_params"] == m.n_params == sum(p.numel() for p in m.module.parameters())
    assert sum(c["n_params"] for c in desc["children"]) == desc["n_params"]
    blocks = _by_path(desc)["blocks"]
    assert sum(b["n_params"] for b in blocks["children"]) == blocks["n_params"]
    for node in iter_nodes(desc):
        own = sum(t["numel"] for t in node["tensors"] if t["kind"] == "param")
        kids = sum(c["n_params"] for c in node["children"] if not c["path"].split(".")[-2:-1] == ["heads"])
        if node["cls"] != "Head":
            assert node["n_params"] == own + kids, node["path"]


def test_tied_weights_are_said_and_counted_once():
    m = _model("nanogpt")
    desc = describe(m.module)
    nodes = _by_path(desc)
    (w,) = [t for t in nodes["lm_head"]["tensors"] if t["name"] == "weight"]
    assert w["note"].startswith("tied") and "token_embedding_table.weight" in w["note"]
    assert "tied" in nodes["lm_head"]["explain"] and "tied" in desc["explain"]
    V, C = m.config.vocab_size, m.config.n_embd
    assert desc["n_params"] == m.n_params
    assert sum(c["n_params"] for c in desc["children"]) == desc["n_params"] + V * C  # lm_head repeats the table


def test_heads_are_slices_that_cover_qkv_exactly_once():
    m = _model("lecture")
    cfg = m.config
    C, hs = cfg.n_embd, cfg.head_size
    sa = _by_path(describe(m.module))["blocks.1.sa"]
    heads = [c for c in sa["children"] if c["cls"] == "Head"]
    assert [h["select"] for h in heads] == [{"layer": 1, "head": h} for h in range(cfg.n_head)]
    rows = []
    for h in heads:
        for t in h["tensors"]:
            assert t["shape"] == (hs, C)
            a, b = map(int, t["note"].split()[1].split(":"))
            rows.extend(range(a, b))
    assert sorted(rows) == list(range(3 * C))
    # the query slice of head 2 is what the model multiplies by for that head's queries
    W = m.module.blocks[1].sa.qkv.weight
    q_rows = next(t for t in heads[2]["tensors"] if t["name"] == "query.weight")["note"]
    a, b = map(int, q_rows.split()[1].split(":"))
    x = torch.randn(5, C)
    q_all = m.module.blocks[1].sa.qkv(x)[:, :C]  # (T, C): every head's queries side by side
    torch.testing.assert_close(x @ W[a:b].T, q_all[:, 2 * hs:3 * hs])


def test_clicks_select_what_they_show():
    m = _model("lecture")
    nodes = _by_path(describe(m.module))
    assert nodes["token_embedding_table"]["select"] == {"layer": -1}
    assert nodes["blocks.2"]["select"] == {"layer": 2}
    assert nodes["blocks.2.ln2"]["select"] == {"layer": 2, "ln_site": "blocks.2.ln2"}
    assert nodes["ln_f"]["select"] == {"layer": 3, "ln_site": "ln_final"}
    assert nodes["blocks"]["select"] is None and nodes[""]["select"] is None
    assert all(n["explain"] for n in nodes.values())
