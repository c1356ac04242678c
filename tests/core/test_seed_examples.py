"""The seed's worked examples, computed through the project's own LayerNorm statistics and Linear code
(``explorer.core.stats`` and the recorded trace), and checked against torch's modules."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer import ExplorerModel, GPTConfig
from explorer.core import stats
import reference_models  # noqa: F401  (one torch thread)

X = [1.0, 2.0, 3.0]
W_SEED = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])  # as the seed writes it: (in, out)
B_SEED = np.array([0.1, -0.1])


def test_layernorm_of_1_2_3():
    ex = stats.layernorm_example(X)
    assert ex.mean == pytest.approx(2.0)
    assert ex.var == pytest.approx(2.0 / 3.0)
    assert round(ex.sigma, 3) == 0.816  # the population std, sqrt(2/3)
    assert ex.std == pytest.approx(np.sqrt(2.0 / 3.0 + 1e-5))  # what LayerNorm divides by: sqrt(var + eps)
    np.testing.assert_array_equal(np.round(ex.normalized, 3), [-1.225, 0.0, 1.225])
    np.testing.assert_array_equal(np.round(ex.output, 3), [-1.225, 0.0, 1.225])  # γ = 1, β = 0
    assert ex.normalized_mean == pytest.approx(0.0, abs=1e-12)
    assert ex.normalized_std == pytest.approx(1.0, abs=1e-4)  # not exactly 1: ε is in the denominator
    np.testing.assert_allclose(stats.layernorm(X), ex.normalized, rtol=1e-12)
    st = stats.layernorm_stats("demo", [X], stats.layernorm([X]), np.ones(3), None)
    assert st.in_mean[0] == pytest.approx(2.0) and round(float(st.in_std[0]), 3) == 0.816
    assert st.out_mean[0] == pytest.approx(0.0, abs=1e-6) and st.out_std[0] == pytest.approx(1.0, abs=1e-4)
    with torch.no_grad():  # torch agrees
        np.testing.assert_allclose(torch.nn.LayerNorm(3)(torch.tensor([X])).numpy()[0], ex.normalized, atol=1e-6)


def test_layernorm_gain_and_bias_apply_after_normalising():
    ex = stats.layernorm_example(X, gain=[2.0, 1.0, 0.5], bias=[0.0, 1.0, -1.0])
    np.testing.assert_allclose(ex.output, ex.normalized * [2.0, 1.0, 0.5] + [0.0, 1.0, -1.0])
    np.testing.assert_array_equal(np.round(ex.output, 3), [-2.449, 1.0, -0.388])


def test_the_traced_model_reports_the_worked_example():
    """A 3-dimensional model whose first residual vector is [1, 2, 3]: the trace's LayerNorm statistics
    and normalized output are the worked example's numbers."""
    cfg = GPTConfig.lecture(vocab_size=2, block_size=4, n_layer=1, n_head=1, n_embd=3)
    m = ExplorerModel.untrained(cfg, ["a", "b"])
    with torch.no_grad():
        m.module.token_embedding_table.weight.copy_(torch.tensor([X, [0.0, 0.0, 1.0]]))
        m.module.position_embedding_table.weight.zero_()
        m.module.blocks[0].ln1.weight.fill_(1.0)
        m.module.blocks[0].ln1.bias.zero_()
    trace = m.trace("a")
    np.testing.assert_array_equal(trace.acts["blocks.0.hook_resid_pre"][0], X)
    st = trace.ln_stats["blocks.0.ln1"]
    assert st.in_mean[0] == pytest.approx(2.0, abs=1e-6) and round(float(st.in_std[0]), 3) == 0.816
    assert trace.acts["blocks.0.ln1.hook_scale"][0, 0] == pytest.approx(np.sqrt(2.0 / 3.0 + 1e-5), rel=1e-6)
    np.testing.assert_allclose(np.round(trace.acts["blocks.0.ln1.hook_normalized"][0], 3), [-1.225, 0.0, 1.225], atol=1e-7)


def test_linear_worked_example_and_torch_storage_order():
    x = np.array(X)
    # the seed's figure, [2.2, 2.8], is x·W: the product before the bias is added
    np.testing.assert_allclose(x @ W_SEED, [2.2, 2.8])
    np.testing.assert_allclose(stats.linear(x, W_SEED.T), [2.2, 2.8])
    # with the bias b = [0.1, -0.1] the layer's output is x·W + b
    np.testing.assert_allclose(stats.linear(x, W_SEED.T, B_SEED), [2.3, 2.7])

    layer = torch.nn.Linear(3, 2)
    assert tuple(layer.weight.shape) == (2, 3)  # torch stores (out_features, in_features): W transposed
    with torch.no_grad(), pytest.raises(RuntimeError):
        layer.weight.copy_(torch.tensor(W_SEED))  # the seed's (in, out) matrix does not fit
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W_SEED.T))
        layer.bias.copy_(torch.tensor(B_SEED))
        y = layer(torch.tensor([X])).numpy()[0]
        layer.bias.zero_()
        y_no_bias = layer(torch.tensor([X])).numpy()[0]
    np.testing.assert_allclose(y, stats.linear(x, layer.weight.detach().numpy(), B_SEED), atol=1e-6)
    np.testing.assert_allclose(y, [2.3, 2.7], atol=1e-6)
    np.testing.assert_allclose(y_no_bias, [2.2, 2.8], atol=1e-6)
    np.testing.assert_array_equal(layer.weight.detach().numpy().T, W_SEED.astype(np.float32))


def test_one_logit_decomposed_into_channel_contributions():
    d = stats.decompose_logit(X, W_SEED.T, B_SEED, token=1, top=2)
    np.testing.assert_allclose(d.contributions, [0.2, 0.8, 1.8])  # x[c] · W[c, out=1]
    assert d.bias == pytest.approx(-0.1) and d.logit == pytest.approx(2.7)
    assert d.top_channels == (2, 1)


def test_softmax_entropy_and_temperature():
    p = stats.softmax([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p, [0.09003057, 0.24472847, 0.66524096], rtol=1e-7)
    assert stats.entropy(p) == pytest.approx(-(p * np.log(p)).sum())
    assert stats.entropy([1.0, 0.0]) == 0.0
    hot, cold = stats.softmax([1.0, 2.0, 3.0], temperature=10.0), stats.softmax([1.0, 2.0, 3.0], temperature=0.1)
    assert stats.entropy(hot) > stats.entropy(p) > stats.entropy(cold)
    assert cold[2] > 0.9999
    with pytest.raises(ValueError):
        stats.softmax([1.0], temperature=0.0)
