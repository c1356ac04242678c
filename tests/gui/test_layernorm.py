"""The LayerNorm panel: the statistics it draws equal those computed here from the trace's
activations, the worked example is right for the lecture's vector and matches torch, the site
selector follows and drives the shared selection, and awkward prompts render."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt

from explorer.gui.panels._ln_example import example_html, fmt, worked_example
from explorer.gui.panels.layernorm import LayerNormPanel, site_layer, site_short
from explorer.gui.selection import Selection


@pytest.fixture
def panel(qtbot):
    p = LayerNormPanel()
    qtbot.addWidget(p)
    p.resize(1000, 650)
    p.show()
    return p


def _ydata(item):
    y = item.getData()[1]
    return np.zeros(0) if y is None else np.asarray(y, dtype=np.float64)


def test_per_position_stats_equal_the_activations_at_every_site(panel, tiny_model):
    tr = tiny_model.trace("First Citizen:\nBefore")
    panel.set_trace(tr)
    for site in tr.ln_sites:
        panel.set_selection(Selection(ln_site=site, position=3))
        x = tr.ln_input(site).astype(np.float64)  # (T, C)
        y = tr.acts[f"{site}.hook_normalized"].astype(np.float64)
        c = panel.per_position.curves
        np.testing.assert_allclose(_ydata(c["in_mean"]), x.mean(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_ydata(c["in_std"]), x.std(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_ydata(c["out_mean"]), y.mean(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_ydata(c["out_std"]), y.std(-1), rtol=1e-5, atol=1e-6)
        assert panel.per_position.axes[1].labels == tr.display_tokens
        assert panel.per_position.cursors[0].getRegion() == (2.5, 3.5)
    # the input of block 0's ln1 is the embedding output: token + position
    x0 = tr.acts["hook_embed"] + tr.acts["hook_pos_embed"]
    np.testing.assert_allclose(tr.ln_input("blocks.0.ln1"), x0, atol=1e-5)


def test_gain_bias_bars_and_largest_gain_marks(panel, tiny_model):
    tr = tiny_model.trace("All:")
    panel.set_trace(tr)
    panel.tabs.setCurrentIndex(1)
    panel.set_selection(Selection(ln_site="blocks.1.ln2"))
    ln = tiny_model.module.blocks[1].ln2
    g, b = ln.weight.detach().numpy(), ln.bias.detach().numpy()
    np.testing.assert_allclose(panel.gain_bias.gain_bars.opts["height"], g, rtol=1e-6)
    np.testing.assert_allclose(panel.gain_bias.bias_bars.opts["height"], b, rtol=1e-6)
    top = np.argsort(-np.abs(g), kind="stable")[:5].tolist()
    assert panel.gain_bias.marked == top
    mx, my = panel.gain_bias.marks.getData()
    assert mx.tolist() == top and np.allclose(my, g[top])
    assert ", ".join(map(str, top)) in panel.gain_frame.caption.label.text()
    tip = panel.channel_text(top[0])
    assert f"γ = {g[top[0]]:.4f}" in tip and "★ number 1" in tip


def test_histogram_is_the_selected_tokens_values_on_shared_bins(panel, tiny_model):
    tr = tiny_model.trace("Speak, speak.")
    panel.set_trace(tr)
    panel.set_selection(Selection(ln_site="blocks.0.ln2", position=2))
    assert panel.histogram.edges.size == 0  # a hidden tab costs nothing…
    panel.tabs.setCurrentIndex(2)  # …and catches up when shown
    x = tr.ln_input("blocks.0.ln2")[2]
    y = tr.acts["blocks.0.ln2.hook_normalized"][2]
    h = panel.histogram
    edges = np.histogram_bin_edges(np.concatenate([x, y]).astype(np.float64), bins=int(np.clip(x.size // 4, 10, 60)))
    np.testing.assert_allclose(h.edges, edges)
    np.testing.assert_array_equal(h.counts_in, np.histogram(x, edges)[0])
    np.testing.assert_array_equal(h.counts_out, np.histogram(y, edges)[0])
    assert h.counts_in.sum() == x.size == h.counts_out.sum()
    xs, ys = h.h_in.getData()
    np.testing.assert_allclose(ys, h.counts_in)


def test_depth_chart_is_every_sites_input_and_output(panel, tiny_model):
    tr = tiny_model.trace("You are all")
    panel.set_trace(tr)
    panel.tabs.setCurrentIndex(3)
    panel.set_selection(Selection(ln_site="blocks.0.ln1", position=1))
    sites = tr.ln_sites
    x_std = np.stack([tr.ln_input(s).astype(np.float64).std(-1) for s in sites])  # (S, T)
    np.testing.assert_allclose(_ydata(panel.depth.sel_in), x_std[:, 1], rtol=1e-5)
    y_std = np.stack([tr.acts[f"{s}.hook_normalized"].astype(np.float64).std(-1) for s in sites])
    np.testing.assert_allclose(_ydata(panel.depth.sel_out), y_std[:, 1], rtol=1e-5)
    assert panel.depth.axis.labels == ["b0.ln1", "b0.ln2", "b1.ln1", "b1.ln2", "ln_f"]
    panel.measure_box.setCurrentIndex(1)  # norm ‖x‖
    x_norm = np.stack([np.linalg.norm(tr.ln_input(s).astype(np.float64), axis=-1) for s in sites])
    np.testing.assert_allclose(_ydata(panel.depth.sel_in), x_norm[:, 1], rtol=1e-5)
    all_y = _ydata(panel.depth.all_in)
    np.testing.assert_allclose(all_y[np.isfinite(all_y)], x_norm.T.ravel(), rtol=1e-5)


def test_worked_example_for_the_lectures_vector():
    w = worked_example([1.0, 2.0, 3.0], None, None, 1e-5)
    ex = w.ex
    assert ex.mean == pytest.approx(2.0)
    assert ex.std == pytest.approx(np.sqrt(2 / 3 + 1e-5))
    assert [fmt(v) for v in ex.normalized] == ["-1.225", "0.000", "1.225"]
    # σ² = 2/3; σ = √(2/3 + ε) = 0.81650… (the lecture's 0.816 is √(2/3) without ε)
    assert fmt(ex.var) == "0.667" and fmt(ex.std) == "0.817"
    assert fmt(ex.normalized_mean) == "0.000" and fmt(ex.normalized_std) == "1.000"
    assert [r[0] for r in w.rows()] == [0, 1, 2] and w.rows(2)[1][1:] == [2.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    html = example_html(w, 3, "demo", "#000000", "#D55E00", 11)
    for s in ("-1.225", "1.225", "<b>2.000</b>", "<b>0.817</b>", "0.667", "ε = 1e-05"):
        assert s in html
    # with γ and β: y = z·γ + β
    w2 = worked_example([1.0, 2.0, 3.0], [2.0, 1.0, 0.5], [0.1, 0.2, 0.3], 1e-5, recorded=[-2.349, 0.2, 0.912])
    np.testing.assert_allclose(w2.ex.output, [-1.2247 * 2 + 0.1, 0.2, 1.2247 * 0.5 + 0.3], atol=1e-3)
    assert w2.max_abs_diff < 1e-3


def test_worked_example_in_the_panel_matches_torch(panel, tiny_model):
    tr = tiny_model.trace("hear me speak")
    panel.set_trace(tr)
    panel.set_selection(Selection(ln_site="blocks.1.ln1", position=5))
    ln = tiny_model.module.blocks[1].ln1
    x = torch.tensor(tr.ln_input("blocks.1.ln1")[5])
    with torch.no_grad():
        y = torch.nn.functional.layer_norm(x, (x.numel(),), ln.weight, ln.bias, ln.eps).numpy()
    ex = panel.example.ex
    np.testing.assert_allclose(ex.output, y, atol=1e-5)
    assert ex.eps == ln.eps
    assert panel.example.max_abs_diff < 1e-4
    text = panel.example_label.text()
    assert f"<b>{fmt(float(x.mean()))}</b>" in text and "The model recorded the same y" in text
    assert fmt(ex.normalized[0]) in text and "the first 6 are shown" in text
    panel.channels.setValue(3)
    assert "the first 3 are shown" in panel.example_label.text()


def test_site_selector_drives_and_follows_the_selection(panel, tiny_model, qtbot):
    tr = tiny_model.trace("First")
    panel.set_trace(tr)
    assert panel.site_box.count() == len(tr.ln_sites) == 5
    panel.site_box.setFocus()
    with qtbot.waitSignal(panel.selectionRequested, timeout=1000) as sig:
        qtbot.keyClick(panel.site_box, Qt.Key.Key_Down)
    assert sig.args == [{"ln_site": "blocks.0.ln2", "layer": 0}]
    assert panel.site == "blocks.0.ln2"
    with qtbot.waitSignal(panel.selectionRequested, timeout=1000) as sig:
        qtbot.keyClick(panel.site_box, Qt.Key.Key_BracketRight)
    assert sig.args == [{"ln_site": "blocks.1.ln1", "layer": 1}]
    # the shared selection moves elsewhere: the panel follows without asking
    with qtbot.assertNotEmitted(panel.selectionRequested):
        panel.set_selection(Selection(layer=2, ln_site="ln_final"))
    assert panel.site_box.currentText().startswith("ln_f")
    np.testing.assert_allclose(_ydata(panel.per_position.curves["in_std"]), tr.ln_stats["ln_final"].in_std)
    assert site_layer("ln_final", 2) == 2 and site_layer("blocks.1.ln2", 2) == 1
    assert site_short("blocks.1.ln2") == "b1.ln2"


def test_click_on_a_position_requests_it(panel, tiny_model, qtbot):
    tr = tiny_model.trace("Resolved")
    panel.set_trace(tr)
    qtbot.waitExposed(panel)
    qtbot.wait(50)
    plot = panel.per_position.std_plot
    scene = plot.getViewBox().mapViewToScene(QPointF(4.0, float(tr.ln_stats["blocks.0.ln1"].in_std[4])))
    vp = panel.per_position.widget.mapFromScene(scene)
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as sig:
        qtbot.mouseClick(panel.per_position.widget.viewport(), Qt.MouseButton.LeftButton, pos=vp)
    assert sig.args == [{"position": 4}]
    assert "position 4" in panel.token_label.text()


@pytest.mark.parametrize("text", ["", "F", "First Citizen:\n" * 3])  # empty, 1 token, over block_size
def test_awkward_prompts_render(panel, tiny_model, text):
    tr = tiny_model.trace(text)
    panel.set_trace(tr)
    panel.set_selection(Selection(ln_site="ln_final"))
    assert len(_ydata(panel.per_position.curves["in_mean"])) == tr.T
    data = panel.export_data()
    assert len(data["layernorm_stats"].rows) == tr.T * len(tr.ln_sites)
    assert data["layernorm_arrays"]["in_std"].shape == (len(tr.ln_sites), tr.T)
    assert len(data["layernorm_gain_bias"].rows) == tr.config.n_embd
    views = panel.export_views()
    assert [v.name for v in views] == ["layernorm_positions", "layernorm_gain_bias", "layernorm_histogram",
                                       "layernorm_depth", "layernorm_example"]
    if tr.T == 0:
        assert "empty" in panel.example_label.text() and panel.per_position.message.toPlainText()
        assert "layernorm_example" not in data
    else:
        assert len(data["layernorm_example"].rows) == tr.config.n_embd + 3
        assert f"position {tr.T - 1}" in views[2].title
