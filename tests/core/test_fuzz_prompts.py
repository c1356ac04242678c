"""Arbitrary Unicode prompts through the tokenizer and the trace (hypothesis): nothing crashes, unknown
characters are reported at their positions, over-long prompts are cropped and say so."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import CharTokenizer, ExplorerModel, GPTConfig
from explorer.core.tokenizer import UnknownCharacterError, display_char
from reference_models import randomize_reference

VOCAB = sorted(set("First Citizen:\nBefore we proceed any further, hear me speak.\n"))
BLOCK = 16

# prompts mixing vocabulary characters with anything Unicode has (astral planes, combining marks,
# control characters, right-to-left text, ...)
prompts = st.text(alphabet=st.one_of(st.sampled_from(VOCAB), st.characters()), max_size=3 * BLOCK)


@pytest.fixture(scope="module")
def model():
    cfg = GPTConfig.lecture(vocab_size=len(VOCAB), block_size=BLOCK, n_layer=2, n_head=2, n_embd=16)
    m = ExplorerModel.untrained(cfg, VOCAB)
    randomize_reference(m.module, seed=9)
    return m


@settings(max_examples=150, deadline=None)
@given(text=prompts)
def test_tokenizer_on_arbitrary_text(text):
    tok = CharTokenizer(VOCAB)
    enc = tok.encode_lenient(text)
    unknown = tuple((i, c) for i, c in enumerate(text) if c not in VOCAB)
    assert enc.unknown == unknown
    assert len(enc.ids) + len(enc.unknown) == len(text)
    assert tok.decode(enc.ids) == "".join(text[i] for i in enc.positions) == "".join(c for c in text if c in VOCAB)
    if unknown:
        with pytest.raises(UnknownCharacterError) as err:
            tok.encode(text)
        assert err.value.unknown == list(unknown)
        assert "not in the vocabulary" in str(err.value)
    else:
        assert tok.decode(tok.encode(text)) == text
    for c in text:
        assert display_char(c)  # every character has a visible form


@settings(max_examples=50, deadline=None)
@given(text=st.text(min_size=1, max_size=80))
def test_vocabulary_from_any_corpus(text):
    tok = CharTokenizer.from_text(text)
    assert list(tok.vocab) == sorted(set(text))
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=prompts)
def test_trace_on_arbitrary_prompts(model, text):
    trace = model.trace(text)
    known = [(i, c) for i, c in enumerate(text) if c in VOCAB]
    assert trace.unknown == tuple((i, c) for i, c in enumerate(text) if c not in VOCAB)
    assert trace.cropped == max(0, len(known) - BLOCK) and trace.was_cropped == (len(known) > BLOCK)
    kept = known[trace.cropped:]
    assert trace.T == len(kept) <= BLOCK
    assert list(trace.positions) == [i for i, _ in kept]
    assert "".join(trace.tokens) == "".join(c for _, c in kept)
    assert [text[p] for p in trace.positions] == list(trace.tokens)
    assert trace.logits.shape == (trace.T, len(VOCAB)) and np.isfinite(trace.logits).all()
    assert trace.logit_lens.shape == (3, trace.T, len(VOCAB))
    if trace.T:
        np.testing.assert_allclose(trace.probs.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(trace.pattern(1).sum(-1), 1.0, atol=1e-5)
        # what the trace says was traced is what the trace computed
        np.testing.assert_allclose(trace.logits, model.trace("".join(trace.tokens)).logits, atol=1e-6)
    assert trace.text == text
