"""``model.trace()`` records every intermediate value without changing the numbers, and every recorded
array agrees with an independent computation from the other recorded arrays and the weights."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from explorer import ExplorerModel, GPTConfig
from explorer.core import stats
from explorer.core.trace import activation_shapes, ln_site_input, ln_sites
from reference_models import randomize_reference as randomize

PROMPT = "First Citizen:\nBefore we proceed"  # 32 characters = the tiny model's block_size


@pytest.fixture(params=["lecture", "nanogpt-bias", "nanogpt-no-bias"])
def model(request, corpus_text):
    vocab = sorted(set(corpus_text))
    shape = dict(vocab_size=len(vocab), block_size=32, n_layer=2, n_head=4, n_embd=32)
    cfg = {"lecture": GPTConfig.lecture(**shape), "nanogpt-bias": GPTConfig.nanogpt(bias=True, **shape),
           "nanogpt-no-bias": GPTConfig.nanogpt(bias=False, **shape)}[request.param]
    m = ExplorerModel.untrained(cfg, vocab, seed=2)
    randomize(m.module, seed=3, scale=0.25)
    return m


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def test_trace_logits_equal_the_plain_forward(model):
    trace = model.trace(PROMPT)
    with torch.inference_mode():
        logits, _ = model.module(torch.tensor([list(trace.ids)]))  # fused attention, nothing recorded
    assert trace.logits.shape == (32, model.config.vocab_size)
    assert np.abs(trace.logits - logits[0].numpy()).max() <= 1e-5
    assert trace.logits.std() > 0.5
    np.testing.assert_allclose(trace.probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(trace.probs, stats.softmax(trace.logits), atol=1e-6)


def test_activation_names_and_shapes(model):
    cfg = model.config
    for text in (PROMPT, "First"):
        trace = model.trace(text)
        want = activation_shapes(cfg, len(text))
        assert list(trace.acts) == list(want)  # the same names, in forward order
        assert {k: v.shape for k, v in trace.acts.items()} == want
        assert all(a.dtype == np.float32 for a in trace.acts.values())
        assert all(a.flags.c_contiguous and not a.flags.writeable for a in trace.acts.values())
        for st in trace.ln_stats.values():
            for a in (st.in_mean, st.in_std, st.in_norm, st.out_mean, st.out_std):
                assert a.dtype == np.float32 and a.flags.c_contiguous and not a.flags.writeable
    names = set(trace.acts)
    for i in range(cfg.n_layer):  # the TransformerLens names the issue lists, spelled out
        for n in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "ln1.hook_scale", "ln1.hook_normalized",
                  "ln2.hook_scale", "ln2.hook_normalized", "attn.hook_attn_scores", "attn.hook_pattern",
                  "attn.hook_z", "hook_attn_out", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out"):
            assert f"blocks.{i}.{n}" in names
    assert {"hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"} <= names
    H, T = cfg.n_head, 5
    shapes = activation_shapes(cfg, T)
    assert shapes["blocks.1.attn.hook_pattern"] == (H, T, T)
    assert shapes["blocks.0.attn.hook_z"] == (T, H, cfg.head_size)
    assert shapes["blocks.0.mlp.hook_post"] == (T, 4 * cfg.n_embd)


def test_attention_patterns_are_causal_distributions(model):
    trace = model.trace(PROMPT)
    T = trace.T
    upper = np.triu(np.ones((T, T), bool), k=1)
    for layer in range(model.config.n_layer):
        pattern, scores = trace.pattern(layer), trace.scores(layer)
        np.testing.assert_allclose(pattern.sum(-1), 1.0, atol=1e-5)  # every row, every head
        assert np.all(pattern[:, upper] == 0.0)  # nothing attends to the future
        assert np.all(pattern[:, ~upper] > 0.0)
        assert np.all(np.isneginf(scores[:, upper])) and np.all(np.isfinite(scores[:, ~upper]))
        np.testing.assert_allclose(pattern, stats.softmax(scores), atol=1e-6)
        assert pattern[:, -1].max() < 0.999, "patterns should be spread for the check to mean anything"


def test_every_activation_follows_from_the_recorded_inputs_and_weights(model):
    """Recompute each hook from its inputs with independent numpy code (float64)."""
    trace, cfg, m = model.trace(PROMPT), model.config, model.module
    a = {k: v.astype(np.float64) for k, v in trace.acts.items()}
    T, C, H, hs = trace.T, cfg.n_embd, cfg.n_head, cfg.head_size
    sd = {k: _np(v) for k, v in m.state_dict().items()}
    np.testing.assert_allclose(a["hook_embed"], sd["token_embedding_table.weight"][trace.ids], atol=1e-6)
    np.testing.assert_allclose(a["hook_pos_embed"], sd["position_embedding_table.weight"][:T], atol=1e-6)
    np.testing.assert_allclose(a["blocks.0.hook_resid_pre"], a["hook_embed"] + a["hook_pos_embed"], atol=1e-6)
    act = (lambda x: np.maximum(x, 0)) if cfg.activation == "relu" else \
        (lambda x: _np(torch.nn.functional.gelu(torch.from_numpy(x))))
    for i in range(cfg.n_layer):
        b = f"blocks.{i}"
        get = lambda name: sd.get(f"{b}.{name}")  # noqa: E731
        ln1 = stats.layernorm(a[f"{b}.hook_resid_pre"], get("ln1.weight"), get("ln1.bias"))
        np.testing.assert_allclose(a[f"{b}.ln1.hook_normalized"], ln1, atol=1e-5)
        np.testing.assert_allclose(a[f"{b}.ln1.hook_scale"][:, 0],
                                   np.sqrt(a[f"{b}.hook_resid_pre"].var(-1) + 1e-5), rtol=1e-5)
        qkv = stats.linear(a[f"{b}.ln1.hook_normalized"], get("sa.qkv.weight"), get("sa.qkv.bias"))  # (T, 3C)
        q, k, v = (qkv[:, j * C:(j + 1) * C].reshape(T, H, hs).transpose(1, 0, 2) for j in range(3))  # (H, T, hs)
        scores = q @ k.transpose(0, 2, 1) * hs ** -0.5
        causal = np.tril(np.ones((T, T), bool))
        np.testing.assert_allclose(a[f"{b}.attn.hook_attn_scores"][:, causal], scores[:, causal], atol=1e-5)
        z = (a[f"{b}.attn.hook_pattern"] @ v).transpose(1, 0, 2)  # (T, H, hs)
        np.testing.assert_allclose(a[f"{b}.attn.hook_z"], z, atol=1e-5)
        attn_out = stats.linear(z.reshape(T, C), get("sa.proj.weight"), get("sa.proj.bias"))
        np.testing.assert_allclose(a[f"{b}.hook_attn_out"], attn_out, atol=1e-5)
        np.testing.assert_allclose(a[f"{b}.hook_resid_mid"], a[f"{b}.hook_resid_pre"] + attn_out, atol=1e-5)
        ln2 = stats.layernorm(a[f"{b}.hook_resid_mid"], get("ln2.weight"), get("ln2.bias"))
        np.testing.assert_allclose(a[f"{b}.ln2.hook_normalized"], ln2, atol=1e-5)
        pre = stats.linear(ln2, get("ffwd.net.0.weight"), get("ffwd.net.0.bias"))
        np.testing.assert_allclose(a[f"{b}.mlp.hook_pre"], pre, atol=1e-5)
        np.testing.assert_allclose(a[f"{b}.mlp.hook_post"], act(a[f"{b}.mlp.hook_pre"]), atol=1e-5)
        mlp_out = stats.linear(a[f"{b}.mlp.hook_post"], get("ffwd.net.2.weight"), get("ffwd.net.2.bias"))
        np.testing.assert_allclose(a[f"{b}.hook_mlp_out"], mlp_out, atol=1e-5)
        np.testing.assert_allclose(a[f"{b}.hook_resid_post"], a[f"{b}.hook_resid_mid"] + mlp_out, atol=1e-5)
        if i + 1 < cfg.n_layer:
            np.testing.assert_array_equal(trace.acts[f"blocks.{i + 1}.hook_resid_pre"], trace.acts[f"{b}.hook_resid_post"])
    last = a[f"blocks.{cfg.n_layer - 1}.hook_resid_post"]
    np.testing.assert_allclose(a["ln_final.hook_normalized"], stats.layernorm(last, sd["ln_f.weight"], sd.get("ln_f.bias")),
                               atol=1e-5)
    np.testing.assert_allclose(trace.logits, stats.linear(a["ln_final.hook_normalized"], sd["lm_head.weight"],
                                                          sd.get("lm_head.bias")), atol=1e-5)


def test_logit_lens(model):
    trace, cfg = model.trace(PROMPT), model.config
    L = cfg.n_layer
    assert trace.logit_lens.shape == (L + 1, trace.T, cfg.vocab_size)
    np.testing.assert_array_equal(trace.logit_lens[-1], trace.logits)
    resid = np.stack([trace.resid(d) for d in range(L + 1)])  # (L+1, T, C)
    np.testing.assert_array_equal(resid[0], trace.acts["blocks.0.hook_resid_pre"])
    p = trace.params
    want = stats.logit_lens(resid, p["ln_f.weight"], p.get("ln_f.bias"), p["lm_head.weight"], p.get("lm_head.bias"))
    np.testing.assert_allclose(trace.logit_lens, want, atol=2e-5)
    assert np.abs(trace.logit_lens[0] - trace.logit_lens[-1]).max() > 0.1  # the layers do change the prediction


def test_layernorm_statistics_equal_numbers_computed_from_the_activations(model):
    trace, cfg = model.trace(PROMPT), model.config
    assert trace.ln_sites == ln_sites(cfg.n_layer) == list(trace.ln_stats)
    mods = [ln for blk in model.module.blocks for ln in (blk.ln1, blk.ln2)] + [model.module.ln_f]
    for site, ln in zip(trace.ln_sites, mods):
        st = trace.ln_stats[site]
        x_in = trace.acts[ln_site_input(site, cfg.n_layer)].astype(np.float64)
        x_out = trace.acts[f"{site}.hook_normalized"].astype(np.float64)
        np.testing.assert_array_equal(trace.ln_input(site), trace.acts[ln_site_input(site, cfg.n_layer)])
        np.testing.assert_allclose(st.in_mean, x_in.mean(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.in_std, x_in.std(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.in_norm, np.linalg.norm(x_in, axis=-1), rtol=1e-5)
        np.testing.assert_allclose(st.out_mean, x_out.mean(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.out_std, x_out.std(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(st.gain, _np(ln.weight).astype(np.float32))
        want_bias = _np(ln.bias).astype(np.float32) if ln.bias is not None else np.zeros(cfg.n_embd, np.float32)
        np.testing.assert_array_equal(st.bias, want_bias)
        ref = stats.layernorm_stats(site, x_in, x_out, st.gain, st.bias)
        np.testing.assert_allclose(st.in_std, ref.in_std, rtol=1e-5)
        assert st.in_std.shape == st.out_mean.shape == (trace.T,) and st.eps == 1e-5


def test_recording_changes_nothing_in_the_model(model):
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.module.train()  # a model left in training mode is traced in eval mode, then handed back as it was
    first = model.trace(PROMPT)
    assert model.module.training
    model.module.eval()
    second = model.trace(PROMPT)
    np.testing.assert_array_equal(first.logits, second.logits)
    for k, v in model.module.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_dropout_is_off_while_tracing(corpus_text):
    vocab = sorted(set(corpus_text))
    cfg = GPTConfig.lecture(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.5)
    m = ExplorerModel.untrained(cfg, vocab)
    randomize(m.module)
    m.module.train()
    a, b = m.trace("First Citizen"), m.trace("First Citizen")
    np.testing.assert_array_equal(a.acts["blocks.0.attn.hook_pattern"], b.acts["blocks.0.attn.hook_pattern"])
    np.testing.assert_allclose(a.pattern(0).sum(-1), 1.0, atol=1e-5)


def test_trace_is_immutable(model):
    trace = model.trace("First")
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.logits = None  # type: ignore[misc]
    with pytest.raises(ValueError):
        trace.logits[0, 0] = 1.0
    with pytest.raises(ValueError):
        trace.acts["blocks.0.attn.hook_pattern"][0, 0, 0] = 1.0
    with pytest.raises(TypeError):
        trace.acts["hook_embed"] = np.zeros(1)  # type: ignore[index]
    with pytest.raises(ValueError):
        trace.ln_stats["blocks.0.ln1"].in_std[0] = 0.0
    with pytest.raises(ValueError):
        trace.params["lm_head.weight"][0, 0] = 0.0
    assert trace.with_gen(7).gen == 7 and trace.gen == 0


def test_empty_prompt_has_a_defined_result(model):
    cfg = model.config
    for text in ("", "é€😀"):  # nothing, or nothing the vocabulary knows
        trace = model.trace(text)
        assert trace.T == 0 and trace.tokens == () and trace.ids.shape == (0,) and trace.cropped == 0
        assert trace.logits.shape == (0, cfg.vocab_size) and trace.probs.shape == (0, cfg.vocab_size)
        assert trace.logit_lens.shape == (cfg.n_layer + 1, 0, cfg.vocab_size)
        assert {k: v.shape for k, v in trace.acts.items()} == activation_shapes(cfg, 0)
        st = trace.ln_stats["blocks.0.ln1"]
        assert st.in_mean.shape == (0,) and st.gain.shape == (cfg.n_embd,)
    assert model.trace("é€😀").unknown == ((0, "é"), (1, "€"), (2, "😀"))


def test_unknown_characters_are_reported_and_left_out(model):
    text = "Fé irst€"
    trace = model.trace(text)
    assert trace.unknown == ((1, "é"), (7, "€"))
    assert "".join(trace.tokens) == "F irst"
    assert list(trace.positions) == [0, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(trace.logits, model.trace("F irst").logits, atol=1e-6)


def test_long_prompt_is_cropped_to_its_last_block_size_characters(model):
    bs = model.config.block_size
    text = "First Citizen:\n" * 5  # 75 characters
    trace = model.trace(text)
    assert trace.T == bs and trace.cropped == len(text) - bs and trace.was_cropped
    assert "".join(trace.tokens) == text[-bs:]
    assert list(trace.positions) == list(range(len(text) - bs, len(text)))
    np.testing.assert_array_equal(trace.logits, model.trace(text[-bs:]).logits)
    assert not model.trace(text[-bs:]).was_cropped


def test_display_tokens_make_whitespace_visible(model):
    trace = model.trace("a s\nc")
    assert trace.display_tokens == ["a", "␣", "s", "⏎", "c"]


def test_trace_follows_weight_changes(model):
    first = model.trace("First")
    with torch.no_grad():  # a script edits the weights in place: the next trace shows the new weights
        model.module.lm_head.weight.mul_(2.0)
    second = model.trace("First")
    np.testing.assert_allclose(second.params["lm_head.weight"], 2.0 * first.params["lm_head.weight"], rtol=1e-6)
    assert not np.allclose(first.logits, second.logits)
    snap = model.state_snapshot()
    version = model.weights_version
    model.load_snapshot(snap)
    assert model.weights_version == version + 1 and model.trace("First").weights_version == version + 1


def test_gpt_record_hands_every_activation_to_the_recording_in_forward_order(model):
    from explorer.core.model import Recording

    class Spy(Recording):
        def __init__(self):
            super().__init__()
            self.events = []

        def layernorm(self, site, out, mean, rstd):
            self.events.append(("ln", site))
            super().layernorm(site, out, mean, rstd)

        def residual(self, depth, x):
            self.events.append(("resid", depth))
            self.acts[f"resid{depth}"] = x

    cfg, trace = model.config, model.trace(PROMPT)
    spy = Spy()
    logits, r = model.module.record(torch.tensor(list(trace.ids)), spy)
    assert r is spy and logits.shape == (trace.T, cfg.vocab_size)
    np.testing.assert_allclose(logits.numpy(), trace.logits, atol=1e-6)
    names = [n for n in r.acts if not n.startswith("resid")]
    assert names == list(trace.acts)  # the same names in the same (forward) order
    for n in names:
        np.testing.assert_allclose(r.acts[n].numpy(), trace.acts[n], atol=1e-6, err_msg=n)
    for d in range(cfg.n_layer + 1):
        np.testing.assert_array_equal(r.acts[f"resid{d}"].numpy(), trace.resid(d))
    L = cfg.n_layer
    want = [("resid", 0)]
    for i in range(L):
        want += [("ln", f"blocks.{i}.ln1"), ("ln", f"blocks.{i}.ln2"), ("resid", i + 1)]
    assert spy.events == want + [("ln", "ln_final")]
    plain, _ = model.module.record(torch.tensor(list(trace.ids)))  # no recording given: a plain one
    np.testing.assert_array_equal(plain.numpy(), logits.numpy())


def test_layernorm_statistics_of_a_constant_input_row(corpus_text):
    """A constant residual vector has σ = 0 (derived from the kernel's 1/sqrt(σ² + ε), it must not go
    negative or NaN), its norm is |c|·sqrt(C), and a LayerNorm with zero bias maps it to the zero
    vector, whose std is exactly 0."""
    vocab = sorted(set(corpus_text))
    cfg = GPTConfig.lecture(vocab_size=len(vocab), block_size=8, n_layer=1, n_head=2, n_embd=16)
    m = ExplorerModel.untrained(cfg, vocab, seed=0)
    randomize(m.module, seed=1, scale=0.25)
    with torch.no_grad():
        m.module.token_embedding_table.weight[vocab.index("a")] = 0.75
        m.module.position_embedding_table.weight[0] = 0.0
        m.module.blocks[0].ln1.bias.zero_()
    other = next(ch for ch in vocab if ch != "a")
    trace = m.trace("a" + other)
    assert trace.T == 2
    st = trace.ln_stats["blocks.0.ln1"]
    assert 0.0 <= st.in_std[0] <= 2e-6
    assert st.in_mean[0] == pytest.approx(0.75, rel=1e-6)
    assert st.in_norm[0] == pytest.approx(0.75 * 4.0, rel=1e-5)
    np.testing.assert_array_equal(trace.acts["blocks.0.ln1.hook_normalized"][0], 0.0)
    assert st.out_mean[0] == 0.0 and st.out_std[0] == 0.0
    assert trace.acts["blocks.0.ln1.hook_scale"][0, 0] == pytest.approx(np.sqrt(1e-5), rel=1e-5)
    assert st.in_std[1] > 0.01 and np.isfinite(trace.logits).all()
