"""The model's own dropout (``explorer.core.model.fast_dropout``) and the explicit attention path
that training with dropout takes."""
from __future__ import annotations

import math

import pytest
import torch

from explorer.core import model as model_mod
from explorer.core.model import GPT, Dropout, GPTConfig, dropout_mask_threshold, fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_drops_the_right_fraction_and_scales_the_rest(p):
    torch.manual_seed(0)
    x = torch.ones(1_000_003)  # not a multiple of 4: the last int64 is only partly used
    y = fast_dropout(x, p)
    p_used = (dropout_mask_threshold(p) + 32768) / 65536
    assert abs(p_used - p) < 1 / 65536
    dropped = (y == 0).double().mean().item()
    sigma = math.sqrt(p * (1 - p) / x.numel())
    assert abs(dropped - p) < 5 * sigma
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p_used)))
    assert abs(y.double().mean().item() - 1.0) < 5 * sigma / (1 - p)


def test_every_lane_of_the_random_words_is_fair_and_unrelated_to_its_neighbour():
    # the mask cuts each 64-bit random number into four 16-bit lanes: each lane must drop with p,
    # and a lane must not predict the next one
    torch.manual_seed(1)
    p = 0.3
    drop = (fast_dropout(torch.ones(400_000), p) == 0).double()
    sigma = math.sqrt(p * (1 - p) / 100_000)
    for lane in range(4):
        assert abs(drop[lane::4].mean().item() - p) < 5 * sigma
    both = (drop[:-1] * drop[1:]).mean().item()
    assert abs(both - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / drop.numel())


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    y = fast_dropout(x, 0.25)
    g = torch.randn_like(y)
    y.backward(g)
    keep = (y != 0).float()
    scale = 1 / (1 - (dropout_mask_threshold(0.25) + 32768) / 65536)
    torch.testing.assert_close(x.grad, g * keep * scale)
    torch.testing.assert_close(y, x.detach() * keep * scale)


def test_seeded_masks_repeat_and_differ_between_seeds():
    x = torch.ones(10_000)
    torch.manual_seed(7)
    a = fast_dropout(x, 0.1)
    torch.manual_seed(7)
    b = fast_dropout(x, 0.1)
    torch.manual_seed(8)
    c = fast_dropout(x, 0.1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_module_is_identity_in_eval_and_at_p_zero_and_zero_at_p_one():
    x = torch.randn(5, 7)
    d = Dropout(0.5)
    assert isinstance(d, torch.nn.Dropout)
    d.eval()
    assert d(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))


def test_training_attention_path_computes_the_same_as_the_fused_one(monkeypatch):
    """With dropout switched to the identity, a training-mode forward (explicit attention, taken
    because dropout > 0) equals the eval-mode forward (PyTorch's fused attention)."""
    cfg = GPTConfig.lecture(vocab_size=20, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.2)
    torch.manual_seed(3)
    m = GPT(cfg)
    with torch.no_grad():
        for prm in m.parameters():
            prm.normal_(0, 0.3)
    idx = torch.randint(0, 20, (3, 16))
    targets = torch.randint(0, 20, (3, 16))
    m.eval()
    want, want_loss = m(idx, targets)
    monkeypatch.setattr(model_mod, "fast_dropout", lambda x, p: x)
    m.train()
    got, got_loss = m(idx, targets)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    got_loss.backward()
    assert all(prm.grad is not None and torch.isfinite(prm.grad).all() for prm in m.parameters())


def test_training_with_dropout_is_random_but_seeded():
    cfg = GPTConfig.lecture(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.3)
    torch.manual_seed(4)
    m = GPT(cfg).train()
    idx = torch.randint(0, 20, (2, 16))
    torch.manual_seed(5)
    a, _ = m(idx)
    torch.manual_seed(5)
    b, _ = m(idx)
    c, _ = m(idx)
    assert torch.equal(a, b) and not torch.equal(a, c)
