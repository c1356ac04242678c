"""The logits panel: bars equal softmax(logits / T), sampling filters match the model's, the
predictions strip and the logit lens match independent computations, the nn.Linear example adds
up, clicks ask for the right selection, and awkward prompts work."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QContextMenuEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QMenu

from explorer import ExplorerModel, GPTConfig
from explorer.core.model import sampling_probs
from explorer.gui import theme as th
from explorer.gui.export_menus import build_panel_menu
from explorer.gui.panels._logits_sampling import sampling_distribution
from explorer.gui.panels.logits import LogitsPanel
from explorer.gui.selection import EMBED, Selection

PROMPT = "First Citizen:\nBefore we"


@pytest.fixture
def panel(qtbot):
    p = LogitsPanel()
    qtbot.addWidget(p)
    p.resize(1200, 900)
    p.show()
    qtbot.waitExposed(p)
    return p


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def scene_click(qtbot, view, scene_pt: QPointF) -> None:
    p = view.mapFromScene(scene_pt)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(p.x(), p.y()))


@pytest.mark.parametrize("T", [0.25, 0.7, 1.0, 1.6, 3.0])
def test_bars_are_softmax_of_logits_over_temperature(panel, tiny_model, T):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    panel.k_spin.setValue(8)
    panel.set_temperature(T)
    logits = trace.logits[-1].astype(np.float64)
    order = np.argsort(-logits)[:8]
    d = panel.bars.data
    assert list(d.ids) == list(order)
    np.testing.assert_allclose(panel.bars.bars.opts["height"], np_softmax(logits / T)[order], rtol=1e-9)
    assert d.labels == [trace.vocab[i].replace(" ", "␣").replace("\n", "⏎") for i in order]
    assert panel.bars.ref.isVisible() == (T != 1.0)
    if T != 1.0:
        np.testing.assert_allclose(panel.bars.ref.opts["height"], np_softmax(logits)[order], rtol=1e-9)
    assert f"T = {T:.2f}" in panel.summary.text()


def test_temperature_slider_recomputes_without_a_new_trace(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    panel.temp_slider.setValue(-30)  # log scale: 10^-0.3 ≈ 0.50
    assert panel.temperature == pytest.approx(0.5)
    assert panel.trace is trace
    logits = trace.logits[-1].astype(np.float64)
    ids = panel.bars.data.ids
    np.testing.assert_allclose(panel.bars.bars.opts["height"], np_softmax(logits / 0.5)[ids], rtol=1e-9)
    panel.temp_reset.click()
    assert panel.temperature == 1.0 and panel.temp_slider.value() == 0
    with pytest.raises(ValueError, match="temperature"):
        panel.set_temperature(0.0)
    assert panel.temperature == 1.0


def test_true_next_character_is_highlighted_with_its_probability(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_selection(Selection(position=3))
    panel.set_trace(trace)
    actual = int(trace.ids[4])
    d = panel.bars.data
    assert d.actual == actual and actual in list(d.ids)  # added after "…" when outside the top-k
    i = list(d.ids).index(actual)
    brushes = panel.bars.brushes(d)
    assert brushes[i] == QColor(th.OKABE_ITO["orange"])
    assert all(b != QColor(th.OKABE_ITO["orange"]) for j, b in enumerate(brushes) if j != i)
    p = np_softmax(trace.logits[3].astype(np.float64))
    H = -(p * np.log(p)).sum()
    assert f"p = {p[actual]:.3f}" in panel.summary.text()
    assert f"entropy {H:.2f}" in panel.summary.text()
    rank = int((p > p[actual]).sum()) + 1
    assert f"rank {rank} of" in panel.summary.text()
    # the last position has no true next character
    panel.set_selection(Selection(position=None))
    assert panel.bars.data.actual is None
    assert "not in the prompt yet" in panel.summary.text()


def test_right_click_on_the_summary_copies_its_text(panel, tiny_model):
    panel.set_selection(Selection(position=3))
    panel.set_trace(tiny_model.trace(PROMPT))
    summary = panel.summary
    assert summary.text().startswith("After position 3")
    pos = QPoint(10, summary.height() // 2)
    ev = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, summary.mapToGlobal(pos))
    QApplication.sendEvent(summary, ev)  # the summary ignores it; the panel's menu opens
    popup = QApplication.activePopupWidget()
    assert isinstance(popup, QMenu)
    actions = {a.text(): a for a in popup.actions() if not a.isSeparator()}
    assert {"Export view…", "Copy image", "Copy text"} <= set(actions)
    QGuiApplication.clipboard().clear()
    actions["Copy text"].trigger()
    popup.close()
    assert QGuiApplication.clipboard().text() == summary.text()
    # over a plot there is nothing to copy as text
    bars_menu = build_panel_menu(panel, panel.bars)
    assert "Copy text" not in [a.text() for a in bars_menu.actions()]


def test_character_outside_top_k_is_added_after_a_gap(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    panel.k_spin.setValue(1)
    for pos in range(trace.T - 1):
        if np.argmax(trace.logits[pos]) != trace.ids[pos + 1]:
            break
    panel.set_selection(Selection(position=pos))
    d = panel.bars.data
    assert len(d.ids) == 2 and d.gap_before_last and d.ids[1] == trace.ids[pos + 1]
    assert panel.bars.axis.labels[1] == "…"


@pytest.mark.parametrize("top_k,top_p", [(None, None), (3, None), (None, 0.6), (5, 0.8), (0, 0.3)])
def test_sampling_distribution_matches_the_models_sampler(tiny_model, top_k, top_p):
    logits = tiny_model.trace(PROMPT).logits[-1]
    for temperature in (0.5, 1.0, 2.0):
        ours = sampling_distribution(logits, temperature, top_k, top_p)
        ref = sampling_probs(torch.tensor(logits, dtype=torch.float64)[None], temperature, top_k, top_p)[0].numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-12)
        assert ours.sum() == pytest.approx(1.0)


def test_sampling_rejects_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        sampling_distribution(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="top_p"):
        sampling_distribution(np.zeros(3), 1.0, None, 1.5)
    with pytest.raises(ValueError, match="top_k"):
        sampling_distribution(np.zeros(3), 1.0, -1, None)


def test_cut_bars_are_grey(panel, tiny_model):
    panel.set_trace(tiny_model.trace(PROMPT))
    panel.k_spin.setValue(6)
    panel.topk_spin.setValue(2)
    d = panel.bars.data
    assert (d.sampling[:2] > 0).all() and (d.sampling[2:] == 0).all()
    grey = QColor(th.OKABE_ITO["grey"])
    assert [b == grey for b in panel.bars.brushes(d)] == [False, False] + [True] * 4
    assert "never sampled" in panel.bars.describe(3)
    assert f"logit {d.logits[0]:+.4f}" in panel.bars.describe(0)


class FakeLoop:
    """What the main window does: append the text, trace the new prompt, hand it to the panel."""

    def __init__(self, panel, model) -> None:
        self.panel, self.model, self.appended = panel, model, []
        panel.appendTextRequested.connect(self.on_append)

    def on_append(self, s: str) -> None:
        self.appended.append(s)
        self.panel.set_trace(self.model.trace(self.panel.trace.text + s))


def run_generate(panel, model, qtbot, prompt, n, seed, **settings) -> str:
    loop = FakeLoop(panel, model)
    panel.set_trace(model.trace(prompt))
    panel.n_spin.setValue(n)
    panel.seed_spin.setValue(seed)
    panel.delay_spin.setValue(0)
    for name, value in settings.items():
        getattr(panel, name).setValue(value)
    qtbot.mouseClick(panel.gen_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.run.active, timeout=60000)
    panel.appendTextRequested.disconnect(loop.on_append)
    assert all(len(s) == 1 for s in loop.appended)
    return "".join(loop.appended)


def test_generate_is_reproducible_and_appends_exactly_n(panel, tiny_model, qtbot):
    a = run_generate(panel, tiny_model, qtbot, PROMPT, 12, seed=7)
    assert len(a) == 12 and panel.trace.text == PROMPT + a
    assert "generated 12 characters" in panel.status.text()
    b = run_generate(panel, tiny_model, qtbot, PROMPT, 12, seed=7)
    assert a == b
    c = run_generate(panel, tiny_model, qtbot, PROMPT, 12, seed=8)
    assert c != a
    # each character is drawn from the trace of the prompt extended so far
    rng = np.random.default_rng(7)
    text = PROMPT
    for _ in range(12):
        p = np_softmax(tiny_model.trace(text).logits[-1].astype(np.float64))
        text += tiny_model.vocab[int(rng.choice(len(p), p=p))]
    assert text == PROMPT + a


def test_generate_uses_temperature_and_top_k(panel, tiny_model, qtbot):
    out = run_generate(panel, tiny_model, qtbot, PROMPT, 8, seed=3, temp_spin=0.6, topk_spin=1)
    text = PROMPT
    for ch in out:  # top-k = 1 is greedy decoding
        assert ch == tiny_model.vocab[int(np.argmax(tiny_model.trace(text).logits[-1]))]
        text += ch


def test_stop_and_editing_the_prompt_end_a_run(panel, tiny_model, qtbot):
    loop = FakeLoop(panel, tiny_model)
    panel.set_trace(tiny_model.trace(PROMPT))
    panel.n_spin.setValue(500)
    panel.delay_spin.setValue(30)
    panel.generate()
    qtbot.waitUntil(lambda: len(loop.appended) >= 2, timeout=30000)
    assert panel.stop_button.isEnabled() and not panel.gen_button.isEnabled()
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    n = len(loop.appended)
    qtbot.wait(150)
    assert len(loop.appended) == n < 500
    assert "stopped" in panel.status.text() and panel.gen_button.isEnabled()

    panel.generate()
    qtbot.waitUntil(lambda: len(loop.appended) >= n + 1, timeout=30000)
    panel.set_trace(tiny_model.trace("All:"))  # the user typed something else
    assert not panel.run.active and "edited" in panel.status.text()


def test_generate_needs_a_prompt(panel, tiny_model):
    panel.set_trace(tiny_model.trace(""))
    assert not panel.gen_button.isEnabled()
    panel.generate()
    assert panel.run is None and "at least one character" in panel.status.text()


def test_logit_lens_matches_lm_head_of_ln_f_of_the_residual_stream(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    m = tiny_model.module
    resid = [trace.acts["blocks.0.hook_resid_pre"]] + [trace.acts[f"blocks.{i}.hook_resid_post"] for i in range(2)]
    with torch.no_grad():
        logits = m.lm_head(m.ln_f(torch.tensor(np.stack(resid)))).numpy()  # (L+1, T, V)
    probs = np_softmax(logits)
    np.testing.assert_array_equal(panel.lens.top_ids, probs.argmax(-1))
    np.testing.assert_allclose(panel.lens.top_probs, probs.max(-1), atol=1e-5)
    np.testing.assert_array_equal(panel.lens.top_ids[-1], trace.probs.argmax(-1))
    shown = panel.lens.text.chars
    assert shown[1][4] == tiny_model.vocab[probs[1, 4].argmax()].replace(" ", "␣").replace("\n", "⏎")
    np.testing.assert_allclose(panel.lens.image.image, probs.max(-1), atol=1e-5)
    assert panel.lens.left.labels == ["embed", "block 0", "block 1"]


def test_logit_lens_click_selects_layer_and_position(panel, tiny_model, qtbot):
    panel.set_trace(tiny_model.trace(PROMPT))
    qtbot.wait(50)
    vb = panel.lens.vb
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as blocker:
        scene_click(qtbot, panel.lens, vb.mapViewToScene(QPointF(5.5, 0.5)))
    assert blocker.args == [{"layer": EMBED, "position": 5}]
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as blocker:
        scene_click(qtbot, panel.lens, vb.mapViewToScene(QPointF(2.5, 2.5)))
    assert blocker.args == [{"layer": 1, "position": 2}]
    panel.set_selection(Selection(layer=1, position=2))
    r = panel.lens.outline.rect()
    assert (r.x(), r.y()) == (2, 2) and panel.lens.outline.isVisible()


def test_linear_example_sums_to_the_displayed_logit(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_selection(Selection(position=6))
    panel.set_trace(trace)
    ex = panel._shown["example"]
    top = int(np.argmax(trace.logits[6]))
    assert ex.token == top and ex.position == 6
    d = ex.decomposition
    x = trace.acts["ln_final.hook_normalized"][6].astype(np.float64)
    W = tiny_model.module.lm_head.weight.detach().numpy().astype(np.float64)
    b = tiny_model.module.lm_head.bias.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(d.contributions, x * W[top], rtol=1e-12)
    assert d.contributions.sum() + d.bias == pytest.approx(float(trace.logits[6, top]), abs=1e-4)
    assert d.bias == pytest.approx(b[top])
    text = panel.linear_view.toPlainText()
    assert f"{d.logit:+.4f}" in text and f"logit shown: {trace.logits[6, top]:+.4f}" in text
    assert "W: (35, 32)" in text and "y = x @ W.T + b" in text
    assert "learned separately" in text
    mags = np.abs(d.contributions[list(d.top_channels)])
    assert (np.diff(mags) <= 0).all() and mags[0] == np.abs(d.contributions).max()


def test_clicking_a_bar_decomposes_that_characters_logit(panel, tiny_model, qtbot):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    qtbot.wait(50)
    second = int(panel.bars.data.ids[1])
    vb = panel.bars.plot.getViewBox()
    scene_click(qtbot, panel.bars, vb.mapViewToScene(QPointF(panel.bars._x[1], panel.bars.data.probs[1] / 2)))
    qtbot.waitUntil(lambda: panel._shown["example"].token == second, timeout=2000)
    assert "the token you clicked" in panel.linear_view.toPlainText()


def test_tied_nanogpt_model_says_w_is_the_embedding_table(panel, corpus_text):
    vocab = sorted(set(corpus_text))
    cfg = GPTConfig.nanogpt(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=2, n_embd=16)
    model = ExplorerModel.untrained(cfg, vocab, seed=3)
    trace = model.trace("Speak, speak.")
    panel.set_trace(trace)
    ex = panel._shown["example"]
    assert ex.tied and not ex.has_bias and ex.decomposition.bias == 0.0
    emb = trace.params["token_embedding_table.weight"]
    np.testing.assert_allclose(ex.weight_row, emb[ex.token])
    assert ex.decomposition.contributions.sum() == pytest.approx(float(trace.logits[-1, ex.token]), abs=1e-4)
    text = panel.linear_view.toPlainText()
    assert "the token embedding table" in text and "bias=False" in text


def test_predictions_strip_marks_right_and_wrong(panel, tiny_model, qtbot):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    d = panel.strip.data
    top = trace.probs.argmax(-1)
    assert d.predicted == [tiny_model.vocab[i].replace(" ", "␣").replace("\n", "⏎") for i in top]
    np.testing.assert_allclose(d.probs, trace.probs.max(-1))
    expected = [int(top[i] == trace.ids[i + 1]) for i in range(trace.T - 1)] + [-1]
    assert list(d.correct) == expected
    assert f"{sum(e == 1 for e in expected)} of {trace.T - 1} right" in panel.strip_caption.label.text()
    cols = panel.strip.columns
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as blocker:
        qtbot.mouseClick(cols, Qt.MouseButton.LeftButton, pos=QPoint(2 + 4 * cols.col_w + cols.col_w // 2, 30))
    assert blocker.args == [{"position": 4}]
    img = cols.grab().toImage()
    assert len({img.pixel(x, y) for x in range(0, img.width(), 3) for y in range(0, img.height(), 3)}) > 10


@pytest.mark.parametrize("prompt_len", [0, 1, 32])
def test_empty_single_and_full_block_prompts(panel, tiny_model, corpus_text, prompt_len):
    trace = tiny_model.trace(corpus_text[:prompt_len])
    panel.set_trace(trace)
    panel.set_selection(Selection(layer=0, position=5))
    if prompt_len == 0:
        assert panel.bars.data is None and panel.strip.data is None
        assert "empty" in panel.summary.text()
        assert panel.lens.top_ids.shape == (3, 0)
    else:
        assert panel._shown["pos"] == min(5, prompt_len - 1)
        assert panel.lens.top_ids.shape == (3, prompt_len)
        assert len(panel.strip.data.inputs) == prompt_len
    data = panel.export_data()
    assert data["logit_lens"]["logits"].shape == (3, prompt_len, len(tiny_model.vocab))
    panel.grab()


def test_export_views_and_data(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_selection(Selection(position=4))
    panel.set_trace(trace)
    panel.k_spin.setValue(5)
    panel.set_temperature(0.8)
    views = panel.export_views()
    assert [v.name for v in views] == ["logits_next_char", "logit_lens", "predictions_strip", "lm_head_linear"]
    assert "position 4" in views[0].title and "T = 0.80" in views[0].title
    data = panel.export_data()
    table = data["logits_topk"]
    assert len(table.rows) == 5 + (0 if trace.ids[5] in panel.bars.data.ids[:5] else 1)
    p = np_softmax(trace.logits[4].astype(np.float64) / 0.8)
    for row in table.rows:
        assert row[4] == pytest.approx(p[row[2]])
    assert len(data["predictions"].rows) == trace.T
    assert len(data["lm_head_decomposition"].rows) == tiny_model.config.n_embd


def test_generate_in_the_main_window_appends_through_the_trace_pipeline(make_window, model_file, qtbot):
    """The real loop: the prompt bar appends each character, the worker traces it, the panel samples
    the next one from the new trace."""
    w = make_window(model_file, prompt="First")
    panel = w.panels["dock_logits"]
    panel.n_spin.setValue(4)
    panel.seed_spin.setValue(11)
    panel.delay_spin.setValue(0)
    qtbot.mouseClick(panel.gen_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.run.active, timeout=60000)
    generated = panel.run.generated
    assert len(generated) == 4 and "generated 4 characters" in panel.status.text()
    assert w.prompt_bar.text() == "First" + generated
    assert w.controller.trace.text == "First" + generated
    assert panel.trace.text == "First" + generated


def test_dark_palette_switches_the_plots(panel, tiny_model):
    from PySide6.QtGui import QPalette

    panel.set_trace(tiny_model.trace(PROMPT))
    pal = panel.palette()
    pal.setColor(QPalette.ColorRole.Window, QColor("#202020"))
    panel.setPalette(pal)
    assert panel.bars.backgroundBrush().color().name().upper() == th.DARK.background.upper()
    assert panel.lens.backgroundBrush().color().name().upper() == th.DARK.background.upper()
    assert th.DARK.foreground.lower() in panel.linear_view.toHtml().lower()


def test_a_new_vocabulary_resets_the_chosen_token(panel, tiny_model, corpus_text):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    panel._on_bar_clicked(len(trace.vocab) - 1)
    assert panel._shown["example"].token == len(trace.vocab) - 1
    vocab = sorted(set("abc d"))
    small = ExplorerModel.untrained(GPTConfig.lecture(vocab_size=len(vocab), block_size=8, n_layer=1, n_head=1,
                                                      n_embd=8), vocab)
    panel.set_trace(small.trace("ab ca"))
    assert panel._shown["example"].token == int(np.argmax(small.trace("ab ca").logits[-1]))
    assert panel.k_spin.maximum() == len(vocab)
