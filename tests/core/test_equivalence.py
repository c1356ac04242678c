"""The batched GPT computes what the per-head reference implementations compute (max |Δlogit| ≤ 1e-5),
for the lecture family (loaded through the lecture checkpoint loader) and nanoGPT's (loaded from
ckpt.pt, with and without biases and torch.compile's prefix, with meta.pkl in each place)."""
from __future__ import annotations

import warnings

import pytest
import torch

import explorer
from explorer.core.model import CausalSelfAttention
from reference_models import LectureGPT, NanoGPT, randomize_reference, save_nanogpt, write_meta

TOL = 1e-5


def _ids(V: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (1, T), generator=torch.Generator().manual_seed(seed))


def _assert_same_logits(reference, model, V, block_size):
    for T in (1, 5, block_size):
        idx = _ids(V, T, seed=T)
        with torch.no_grad():
            want = reference(idx)[0]  # (T, V)
            got, _ = model.module(idx)  # plain forward
        trace = model.trace("".join(model.vocab[i] for i in idx[0].tolist()))
        assert want.std() > 0.5, "the reference logits are too flat for the comparison to mean anything"
        assert (got[0] - want).abs().max().item() <= TOL
        assert float((torch.from_numpy(trace.logits.copy()) - want).abs().max()) <= TOL


@pytest.mark.parametrize("n_head", [1, 3, 4])
def test_lecture_checkpoint_matches_per_head_reference(tmp_path, corpus_text, corpus_file, n_head):
    vocab = sorted(set(corpus_text))
    ref = LectureGPT(len(vocab), n_embd=24, n_head=n_head, n_layer=3, block_size=16).eval()
    randomize_reference(ref, seed=n_head)
    assert any(abs(float(w) - 1.0) > 0.3 for w in ref.blocks[0].ln1.weight.detach()), "LayerNorm gains must be far from 1"
    path = tmp_path / "lecture.pt"
    torch.save(ref.state_dict(), path)  # exactly what the lecture script saves (tril buffers included)

    model = explorer.load(path, corpus=corpus_file)
    cfg = model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.vocab_size) == (3, n_head, 24, 16, len(vocab))
    assert (cfg.activation, cfg.tie_weights, cfg.lm_head_bias, cfg.family) == ("relu", False, True, "lecture")
    _assert_same_logits(ref, model, len(vocab), 16)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("compiled", [False, True], ids=["plain-keys", "orig_mod-keys"])
@pytest.mark.parametrize("meta_place", ["beside", "data-dir", "argument"])
def test_nanogpt_checkpoint_matches_reference(tmp_path, corpus_text, bias, compiled, meta_place):
    chars = sorted(set(corpus_text))
    ref = NanoGPT(len(chars), n_embd=16, n_head=4, n_layer=2, block_size=12, bias=bias).eval()
    randomize_reference(ref, seed=7)
    out_dir = tmp_path / "out-tiny-char"
    ckpt = save_nanogpt(out_dir, ref, compiled=compiled, dataset="tiny_char")
    meta_arg = None
    if meta_place == "beside":
        write_meta(out_dir / "meta.pkl", chars)
    elif meta_place == "data-dir":  # nanoGPT's layout: out-*/ckpt.pt and data/<dataset>/meta.pkl
        write_meta(tmp_path / "data" / "tiny_char" / "meta.pkl", chars)
    else:
        meta_arg = write_meta(tmp_path / "elsewhere" / "vocab.pkl", chars)

    model = explorer.load(ckpt, meta=meta_arg)
    cfg = model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.vocab_size) == (2, 4, 16, 12, len(chars))
    assert (cfg.activation, cfg.bias, cfg.tie_weights, cfg.lm_head_bias) == ("gelu", bias, True, False)
    assert model.vocab == chars
    assert model.module.lm_head.weight is model.module.token_embedding_table.weight
    assert model.info["iter_num"] == 250 and model.info["best_val_loss"] == pytest.approx(1.4697)
    _assert_same_logits(ref, model, len(chars), 12)


def test_untied_nanogpt_checkpoint_keeps_its_own_lm_head(tmp_path, corpus_text):
    chars = sorted(set(corpus_text))
    ref = NanoGPT(len(chars), n_embd=16, n_head=2, n_layer=1, block_size=8, bias=True, tied=False).eval()
    randomize_reference(ref, seed=3)
    ckpt = save_nanogpt(tmp_path, ref)
    write_meta(tmp_path / "meta.pkl", chars)
    model = explorer.load(ckpt)
    assert model.config.tie_weights is False and model.config.family == "nanogpt"
    assert model.module.lm_head.weight is not model.module.token_embedding_table.weight
    _assert_same_logits(ref, model, len(chars), 8)


def test_heads_are_computed_in_one_batched_projection(tiny_model):
    """No per-head modules: one qkv Linear of 3·n_embd outputs per block."""
    for block in tiny_model.module.blocks:
        attn = block.sa
        assert isinstance(attn, CausalSelfAttention)
        assert attn.qkv.out_features == 3 * tiny_model.config.n_embd
        assert not any(isinstance(m, torch.nn.ModuleList) for m in attn.modules())


def test_generate_crops_the_context_like_the_lecture(tmp_path, corpus_text, corpus_file):
    """Greedy decoding past block_size gives the lecture's tokens: the context is cropped the same way."""
    vocab = sorted(set(corpus_text))
    ref = LectureGPT(len(vocab), n_embd=16, n_head=2, n_layer=2, block_size=8).eval()
    randomize_reference(ref, seed=11, scale=0.4)
    torch.save(ref.state_dict(), tmp_path / "m.pt")
    model = explorer.load(tmp_path / "m.pt", corpus=corpus_file)
    prompt = "First Cit"  # 9 characters: longer than block_size already
    want = ref.greedy(torch.tensor([[vocab.index(c) for c in prompt]]), 20)[0, len(prompt):].tolist()
    got = model.generate(prompt, 20, top_k=1, seed=0)
    assert got == "".join(vocab[i] for i in want)
    assert len(set(got)) > 1, "greedy output should not be a single repeated character for this check to bite"


def test_tiny_shakespeare_default_vocabulary_with_warning(tmp_path):
    """A 65-token lecture checkpoint without a corpus gets the Tiny Shakespeare alphabet, with a warning."""
    ref = LectureGPT(65, n_embd=8, n_head=2, n_layer=1, block_size=8).eval()
    randomize_reference(ref, seed=5)
    torch.save(ref.state_dict(), tmp_path / "shakespeare.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = explorer.load(tmp_path / "shakespeare.pt")
    assert any("Tiny Shakespeare" in str(w.message) for w in caught)
    assert model.vocab == sorted(set(model.vocab)) and model.vocab[:3] == ["\n", " ", "!"]
    assert "".join(model.vocab[-26:]) == "abcdefghijklmnopqrstuvwxyz"
    _assert_same_logits(ref, model, 65, 8)
