"""The public objects scripts use: GPTConfig, GPT, ExplorerModel (generate, snapshots, repr), the
tokenizer's errors and the sampling distribution."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import explorer
from explorer import CharTokenizer, ExplorerModel, GPT, GPTConfig
from explorer.core.model import count_params, sampling_probs
from explorer.core.tokenizer import TINY_SHAKESPEARE_VOCAB
from reference_models import randomize_reference


@pytest.mark.parametrize("bad, match", [
    (dict(n_embd=30, n_head=4), "divisible"),
    (dict(n_layer=0), "n_layer must be a positive integer"),
    (dict(block_size=2.5), "block_size must be a positive integer"),
    (dict(vocab_size=True), "vocab_size must be a positive integer"),
    (dict(activation="tanh"), "activation must be one of"),
    (dict(dropout=1.0), "dropout must be in"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**bad)


def test_config_families_and_dict_round_trip():
    lec, nano = GPTConfig.lecture(), GPTConfig.nanogpt(bias=False)
    assert (lec.activation, lec.tie_weights, lec.qkv_bias, lec.lm_head_bias, lec.family) == ("relu", False, False, True, "lecture")
    assert (nano.activation, nano.tie_weights, nano.bias, nano.lm_head_bias, nano.family) == ("gelu", True, False, False, "nanogpt")
    assert GPTConfig.from_dict(nano.to_dict()) == nano
    assert (GPTConfig().n_layer, GPTConfig().n_head, GPTConfig().n_embd, GPTConfig().block_size) == (4, 4, 128, 128)
    with pytest.raises(ValueError, match="unknown GPTConfig fields"):
        GPTConfig.from_dict(dict(lec.to_dict(), n_experts=8))


@pytest.mark.parametrize("cfg", [
    GPTConfig.lecture(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384),
    GPTConfig.lecture(),
    GPTConfig.nanogpt(bias=True, vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=16),
    GPTConfig.nanogpt(bias=False, vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=16),
])
def test_parameter_count(cfg):
    assert count_params(cfg) == GPT(cfg).num_params()


def test_the_lecture_model_has_the_lectures_parameter_count():
    """The lecture's model (6 layers, 6 heads, 384 dims, 256 positions, 65 characters) has 10.79M parameters."""
    cfg = GPTConfig.lecture(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384)
    assert round(count_params(cfg) / 1e6, 2) == 10.79


def test_generate_is_reproducible_and_respects_the_vocabulary(tiny_model):
    a = tiny_model.generate("First", 40, seed=1)
    assert a == tiny_model.generate("First", 40, seed=1) and len(a) == 40
    assert a != tiny_model.generate("First", 40, seed=2)
    assert set(a) <= set(tiny_model.vocab)
    assert len(tiny_model.generate("", 5, seed=0)) == 5  # an empty prompt starts from token 0
    assert len(tiny_model.generate("é€", 5, seed=0)) == 5  # unknown characters are skipped
    greedy = tiny_model.generate("First Citizen", 10, top_k=1)
    assert greedy == tiny_model.generate("First Citizen", 10, top_k=1, seed=5)  # top-1 ignores the seed


def test_sampling_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    p = sampling_probs(logits)
    np.testing.assert_allclose(p.numpy(), torch.softmax(logits, -1).numpy(), rtol=1e-6)
    p2 = sampling_probs(logits, top_k=2)
    assert (p2[0, 2:] == 0).all() and p2.sum().item() == pytest.approx(1.0)
    np.testing.assert_allclose(p2[0, :2].numpy(), torch.softmax(logits[0, :2], -1).numpy(), rtol=1e-6)
    hot = sampling_probs(logits, temperature=5.0)
    assert hot.max() < p.max()
    nucleus = sampling_probs(logits, top_p=0.7)  # the first token alone has 0.61 < 0.7: two are kept
    assert (nucleus[0] > 0).tolist() == [True, True, False, False]
    with pytest.raises(ValueError):
        sampling_probs(logits, temperature=0.0)


def test_snapshots_swap_weights(tiny_model, corpus_text):
    other = ExplorerModel.untrained(tiny_model.config, tiny_model.vocab, seed=99)
    randomize_reference(other.module, seed=99)
    before = tiny_model.trace("First").logits
    saved = tiny_model.state_snapshot()
    tiny_model.load_snapshot(other.state_snapshot())
    np.testing.assert_array_equal(tiny_model.trace("First").logits, other.trace("First").logits)
    tiny_model.load_snapshot(saved)
    np.testing.assert_array_equal(tiny_model.trace("First").logits, before)
    assert tiny_model.weights_version == 2
    with pytest.raises(RuntimeError):
        tiny_model.load_snapshot({"token_embedding_table.weight": torch.zeros(1)})


def test_model_object(tiny_model):
    assert tiny_model.vocab == sorted(tiny_model.vocab) and tiny_model.tokenizer == CharTokenizer(tiny_model.vocab)
    assert isinstance(tiny_model.module, GPT) and not tiny_model.module.training
    assert "tiny" in repr(tiny_model) and "n_layer=2" in repr(tiny_model)
    assert tiny_model.n_params == count_params(tiny_model.config)
    with pytest.raises(ValueError, match="vocab_size"):
        ExplorerModel(tiny_model.module, tiny_model.vocab[:-1])
    with pytest.raises(TypeError, match="prompt must be a str"):
        tiny_model.trace(b"bytes")  # type: ignore[arg-type]
    assert explorer.load is explorer.core.load and explorer.Trace is explorer.core.Trace


def test_tokenizer_rules():
    tok = CharTokenizer.from_text("hello world")
    assert tok.vocab == (" ", "d", "e", "h", "l", "o", "r", "w") and len(tok) == 8 and "h" in tok
    assert tok.decode(tok.encode("hello")) == "hello"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([8])
    for bad, match in (([], "empty"), (["a", "a"], "duplicate"), (["ab"], "single characters")):
        with pytest.raises(ValueError, match=match):
            CharTokenizer(bad)
    assert len(TINY_SHAKESPEARE_VOCAB) == 65 and list(TINY_SHAKESPEARE_VOCAB) == sorted(TINY_SHAKESPEARE_VOCAB)
