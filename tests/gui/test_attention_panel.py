"""The attention panel: the heatmap shows the recorded pattern, the mask is masked, averaging and
scores are right, clicks ask for the right selection, and odd prompt lengths work."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPalette, QTextCursor

from explorer.gui import theme as th
from explorer.gui.panels._attn_grid import GAP_INDEX, cell_pixels
from explorer.gui.panels._attn_style import outline_pen
from explorer.gui.panels.attention import AttentionPanel, head_entropies, uniform_entropy
from explorer.gui.selection import EMBED, Selection

PROMPT = "First Citizen:\nBefore we"


@pytest.fixture
def panel(qtbot):
    p = AttentionPanel()
    qtbot.addWidget(p)
    p.resize(1100, 800)
    p.show()
    qtbot.waitExposed(p)
    return p


def reference_pattern(model, trace, layer: int, head: int) -> np.ndarray:
    """The attention pattern of one head computed here, from ln1's output and the qkv weights."""
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in model.module.state_dict().items()}
    x = trace.acts[f"blocks.{layer}.ln1.hook_normalized"].astype(np.float64)  # (T, C)
    W = sd[f"blocks.{layer}.sa.qkv.weight"]  # (3C, C), rows [q | k | v]
    C, hs = model.config.n_embd, model.config.head_size
    q = x @ W[:C].T
    k = x @ W[C:2 * C].T
    qh, kh = q[:, head * hs:(head + 1) * hs], k[:, head * hs:(head + 1) * hs]
    s = qh @ kh.T / np.sqrt(hs)
    T = x.shape[0]
    s[np.triu_indices(T, 1)] = -np.inf
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def scene_click(qtbot, view, scene_pt: QPointF) -> None:
    p = view.mapFromScene(scene_pt)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(p.x(), p.y()))


def test_heatmap_shows_the_selected_heads_pattern_and_masks_the_future(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    T = trace.T
    panel.set_selection(Selection(layer=1, head=1))
    panel.set_trace(trace)
    img = panel.heatmap.displayed_image()
    assert img.shape == (T, T)
    causal = np.tril(np.ones((T, T), bool))
    expected = trace.acts["blocks.1.attn.hook_pattern"][1]
    np.testing.assert_allclose(img[causal], expected[causal], rtol=1e-6)
    np.testing.assert_allclose(img[causal], reference_pattern(tiny_model, trace, 1, 1)[causal], atol=1e-5)
    assert np.isnan(img[~causal]).all()
    mask = panel.heatmap.mask
    assert mask.T == T
    for q in range(T):
        for k in range(T):
            assert mask.contains_cell(q, k) == (k > q)
    # the pattern is not the other head's: the test would catch a wrong head index
    assert not np.allclose(img[causal], trace.acts["blocks.1.attn.hook_pattern"][0][causal])
    assert "Block 1 · head 1" in panel.heatmap_caption.label.text()
    assert panel.heatmap.colorbar.levels() == (0.0, 1.0)


def test_masked_cells_are_drawn_grey_and_causal_cells_in_colour(panel, tiny_model, qtbot):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    qtbot.wait(50)
    glw, vb = panel.heatmap.glw, panel.heatmap.vb
    image = glw.grab().toImage()
    dpr = image.devicePixelRatio()

    def pixel(q, k) -> QColor:
        p = glw.mapFromScene(vb.mapViewToScene(QPointF(k + 0.5, q + 0.5)))
        return QColor(image.pixel(int(p.x() * dpr), int(p.y() * dpr)))

    T = trace.T
    greys = {QColor(th.MASK_COLOR).rgb(), QColor("#7A7A7A").rgb()}
    masked = [pixel(q, T - 1).rgb() for q in range(T - 1)]
    assert all(c in greys for c in masked)
    assert any(c == QColor(th.MASK_COLOR).rgb() for c in masked)
    # the diagonal is in colour: cividis is never a neutral grey at its ends
    c = pixel(0, 0)  # weight 1.0 → the yellow end of cividis
    assert c.red() > 180 and c.blue() < 120


def test_average_over_heads_and_scores_mode(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    T = trace.T
    causal = np.tril(np.ones((T, T), bool))
    panel.set_selection(Selection(layer=0, head=1))
    panel.set_trace(trace)
    panel.set_average_heads(True)
    img = panel.heatmap.displayed_image()
    ref = (reference_pattern(tiny_model, trace, 0, 0) + reference_pattern(tiny_model, trace, 0, 1)) / 2
    np.testing.assert_allclose(img[causal], ref[causal], atol=1e-5)
    assert "mean of 2 heads" in panel.heatmap_caption.label.text()
    assert not panel.head_spin.isEnabled()
    assert panel.grid.selected == (0, None) and panel.grid.outlined() == [(0, 0), (0, 1)]

    panel.set_average_heads(False)
    panel.set_mode("scores")
    img = panel.heatmap.displayed_image()
    scores = trace.scores(0)[1]
    np.testing.assert_allclose(img[causal], scores[causal], rtol=1e-6)
    lo, hi = panel.heatmap.colorbar.levels()
    assert lo == pytest.approx(scores[causal].min()) and hi == pytest.approx(scores[causal].max())
    assert lo < 0 < hi or hi - lo > 0.1
    assert f"{lo:+.2f}" in panel.heatmap_caption.label.text()
    with pytest.raises(ValueError, match="weights' or 'scores"):
        panel.set_mode("logits")
    assert panel.mode == "scores"


def test_hover_text_names_characters_weight_and_score(panel, tiny_model, qtbot):
    trace = tiny_model.trace(PROMPT)
    panel.set_selection(Selection(layer=1, head=0))
    panel.set_trace(trace)
    text = panel.heatmap.describe(5, 2)
    w = trace.pattern(1)[0][5, 2]
    s = trace.scores(1)[0][5, 2]
    assert f"{w:.4f}" in text and f"{s:+.3f}" in text
    assert "query 5 '␣'" in text and "key 2 'r'" in text  # "First Citizen": the space is shown as ␣
    assert "masked" in panel.heatmap.describe(2, 5)
    # moving the mouse over cell (5, 2) puts the same text in the readout line
    glw, vb = panel.heatmap.glw, panel.heatmap.vb
    qtbot.wait(50)
    p = glw.mapFromScene(vb.mapViewToScene(QPointF(2.5, 5.5)))
    qtbot.mouseMove(glw.viewport(), QPoint(p.x(), p.y()))
    qtbot.waitUntil(lambda: panel.heatmap.readout.text() == text, timeout=2000)


def test_clicking_a_row_requests_that_query_position(panel, tiny_model, qtbot):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    qtbot.wait(50)
    vb = panel.heatmap.vb
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as blocker:
        scene_click(qtbot, panel.heatmap.glw, vb.mapViewToScene(QPointF(1.5, 4.5)))
    assert blocker.args == [{"position": 4}]
    # a click in the masked part of row 2 selects row 2 as well
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as blocker:
        scene_click(qtbot, panel.heatmap.glw, vb.mapViewToScene(QPointF(7.5, 2.5)))
    assert blocker.args == [{"position": 2}]


def test_grid_click_selects_layer_and_head_and_outlines_it(panel, tiny_model, qtbot):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    qtbot.wait(50)
    grid = panel.grid
    assert grid.shape == (2, 2)
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as blocker:
        scene_click(qtbot, grid, grid.cell_rect(1, 0).center())
    assert blocker.args == [{"layer": 1, "head": 0}]
    panel.set_selection(Selection(layer=1, head=0))
    assert grid.outlined() == [(1, 0)]
    panel.set_selection(Selection(layer=0, head=1))
    assert grid.outlined() == [(0, 1)]
    # the outline is really drawn: the selected cell's top edge is the outline colour, the other cells' not
    img = grid.grab().toImage()

    def edge_colour(layer, h):
        r = grid.mapFromScene(grid.cell_rect(layer, h)).boundingRect()
        return img.pixelColor(r.center().x(), r.top()).name()

    outline = outline_pen(th.LIGHT).color().name()
    assert edge_colour(0, 1) == outline and edge_colour(1, 0) != outline and edge_colour(1, 1) != outline


def test_grid_is_one_image_updated_with_set_image(panel, tiny_model):
    panel.set_trace(tiny_model.trace("First"))
    image, overlay = panel.grid.image, panel.grid.overlay
    panel.set_trace(tiny_model.trace("First Citizen"))
    assert panel.grid.image is image and panel.grid.overlay is overlay
    trace = tiny_model.trace("First Citizen")
    T = trace.T
    shown = panel.grid.indices[1, 1]
    assert shown.shape == (T, T) and shown.dtype == np.uint8
    p = trace.pattern(1)[1]
    causal = np.tril(np.ones((T, T), bool))
    np.testing.assert_allclose(shown[causal] / 253.0, p[causal], atol=0.5 / 253 + 1e-6)
    assert (shown[~causal] == 255).all()
    # the mosaic: cell (1, 1) holds that pattern resampled to S×S, the gaps are the background index
    S, G = cell_pixels(T)
    mos = panel.grid.image.image
    assert mos.shape == (2 * S + G, 2 * S + G)
    pick = (np.arange(S) * T) // S
    np.testing.assert_array_equal(mos[S + G:, S + G:], shown[pick][:, pick])
    assert (mos[S:S + G, :] == GAP_INDEX).all() and (mos[:, S:S + G] == GAP_INDEX).all()


def test_entropy_on_each_cell(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    for layer in range(2):
        for h in range(2):
            p = trace.pattern(layer)[h].astype(np.float64)
            rows = [-(r[r > 0] * np.log(r[r > 0])).sum() for r in p]
            assert panel.grid.entropy_text(layer, h) == f"{np.mean(rows):.2f}"
    assert head_entropies(np.eye(3)[None]).item() == pytest.approx(0.0)
    assert uniform_entropy(3) == pytest.approx(np.mean(np.log([1, 2, 3])))
    panel.entropy_check.setChecked(False)
    assert panel.grid.entropy_text(0, 0) == ""


def test_text_view_shades_by_the_query_row_and_click_selects(panel, tiny_model, qtbot):
    trace = tiny_model.trace(PROMPT)
    panel.set_selection(Selection(layer=0, head=0, position=6))
    panel.set_trace(trace)
    tv = panel.text_view
    assert tv.query == 6
    np.testing.assert_allclose(tv.weights, trace.pattern(0)[0][6])
    html_text = tv.toHtml()
    assert "line-through" in html_text  # characters after the query are struck through
    w = trace.pattern(0)[0][6][:7]
    assert f"{w.max():.3f}" in panel.text_caption.label.text()
    assert f"{w[3]:.4f}" in tv.describe(3)
    with qtbot.waitSignal(panel.selectionRequested, timeout=2000) as blocker:
        qtbot.mouseClick(tv.viewport(), Qt.MouseButton.LeftButton, pos=char_point(tv, 3))
    assert blocker.args == [{"position": 3}]


def char_point(tv, index: int) -> QPoint:
    """Viewport coordinates of the middle of the character linked as ``pos:index``."""
    doc = tv.document()
    for i in range(doc.characterCount() - 1):
        cur = QTextCursor(doc)
        cur.setPosition(i + 1)
        if cur.charFormat().anchorHref() == f"pos:{index}":
            cur.setPosition(i)
            left = tv.cursorRect(cur)
            cur.setPosition(i + 1)
            right = tv.cursorRect(cur)
            return QPoint((left.x() + right.x()) // 2, left.center().y())
    raise AssertionError(f"no character linked to pos:{index}")


def test_embedding_and_head_selection_map_to_first_and_last_block(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_trace(trace)
    panel.set_selection(Selection(layer=EMBED, head=1))
    assert panel.block_spin.value() == 0
    np.testing.assert_allclose(panel.heatmap._weights, trace.pattern(0)[1])
    assert "embeddings selected" in panel.heatmap_caption.label.text()
    panel.set_selection(Selection(layer=trace.n_layer, head=1))
    assert panel.block_spin.value() == trace.n_layer - 1
    np.testing.assert_allclose(panel.heatmap._weights, trace.pattern(1)[1])


def test_spin_boxes_request_selection(panel, tiny_model, qtbot):
    panel.set_trace(tiny_model.trace(PROMPT))
    with qtbot.waitSignal(panel.selectionRequested, timeout=1000) as blocker:
        panel.head_spin.setValue(1)
    assert blocker.args == [{"head": 1}]


@pytest.mark.parametrize("prompt_len", [0, 1, 32])
def test_empty_single_and_full_block_prompts(panel, tiny_model, corpus_text, prompt_len):
    trace = tiny_model.trace(corpus_text[:prompt_len])
    assert trace.T == prompt_len
    panel.set_trace(trace)
    panel.set_selection(Selection(layer=1, head=1, position=3))
    img = panel.heatmap.displayed_image()
    if prompt_len == 0:
        assert img is None
        assert "empty" in panel.heatmap_caption.label.text()
        assert panel.export_data()["attention_all_blocks"]["patterns"].shape == (2, 2, 0, 0)
    else:
        assert img.shape == (prompt_len, prompt_len)
        assert panel.text_view.query == min(3, prompt_len - 1)
        if prompt_len == 1:
            assert img[0, 0] == pytest.approx(1.0)
    panel.grab()  # paints without error


def test_export_views_and_data(panel, tiny_model):
    trace = tiny_model.trace(PROMPT)
    panel.set_selection(Selection(layer=1, head=0, position=4))
    panel.set_trace(trace)
    views = panel.export_views()
    assert [v.name for v in views] == ["attention_heatmap", "attention_heads", "attention_text"]
    assert "block 1" in views[0].title and "head 0" in views[0].title and "position 4" in views[0].title
    data = panel.export_data()
    np.testing.assert_array_equal(data["attention_block1"]["pattern"], trace.pattern(1))
    assert data["attention_block1"]["tokens"].tolist() == list(trace.tokens)
    assert data["attention_all_blocks"]["patterns"].shape == (2, 2, trace.T, trace.T)


def test_dark_palette_switches_the_theme(panel, tiny_model):
    panel.set_trace(tiny_model.trace(PROMPT))
    pal = panel.palette()
    pal.setColor(QPalette.ColorRole.Window, QColor("#202020"))
    panel.setPalette(pal)
    assert panel.grid.backgroundBrush().color().name().upper() == th.DARK.background.upper()
    pal.setColor(QPalette.ColorRole.Window, QColor("#F0F0F0"))
    panel.setPalette(pal)
    assert panel.grid.backgroundBrush().color().name().upper() == th.LIGHT.background.upper()


def test_row_and_grid_clicks_change_the_shared_selection_in_the_main_window(make_window, model_file, qtbot):
    w = make_window(model_file, prompt="First Citizen")
    panel = w.panels["dock_attention"]
    logits = w.panels["dock_logits"]
    w.docks["dock_attention"].raise_()
    qtbot.waitUntil(lambda: panel.isVisible() and panel.heatmap.T == 13, timeout=10000)
    qtbot.wait(50)
    scene_click(qtbot, panel.heatmap.glw, panel.heatmap.vb.mapViewToScene(QPointF(0.5, 3.5)))
    qtbot.waitUntil(lambda: w.controller.selection.position == 3, timeout=5000)
    assert panel.text_view.query == 3 and logits._shown["pos"] == 3  # every panel follows
    grid = panel.grid
    scene_click(qtbot, grid, grid.cell_rect(1, 1).center())
    qtbot.waitUntil(lambda: (w.controller.selection.layer, w.controller.selection.head) == (1, 1), timeout=5000)
    assert panel.block_spin.value() == 1 and panel.head_spin.value() == 1


def test_narrow_dock_stacks_the_views_and_wraps_the_controls(panel, tiny_model, qtbot):
    panel.set_trace(tiny_model.trace(PROMPT))
    top = panel.splitter.widget(0)
    panel.resize(1100, 800)
    qtbot.waitUntil(lambda: top.orientation() == Qt.Orientation.Horizontal, timeout=2000)
    one_line = panel.controls.height()
    panel.resize(420, 800)
    qtbot.waitUntil(lambda: top.orientation() == Qt.Orientation.Vertical, timeout=2000)
    qtbot.waitUntil(lambda: panel.controls.height() > one_line, timeout=2000)
    assert panel.controls.geometry().right() <= panel.width()


@pytest.mark.parametrize("size", [(1100, 500), (420, 1200)])
def test_the_whole_pattern_fits_wide_and_tall_views_and_double_click_refits(panel, tiny_model, qtbot, size):
    trace = tiny_model.trace(PROMPT)
    panel.resize(*size)
    panel.set_trace(trace)
    qtbot.wait(100)
    T, vb = trace.T, panel.heatmap.vb

    def fitted() -> bool:
        (x0, x1), (y0, y1) = vb.viewRange()
        return x0 <= 0 and x1 >= T and y0 <= 0 and y1 >= T and min(x1 - x0, y1 - y0) < T + 3

    qtbot.waitUntil(fitted, timeout=2000)
    vb.scaleBy((0.5, 0.5))  # zoom in, as the mouse wheel does
    vb.sigRangeChangedManually.emit(vb.state["mouseEnabled"])
    assert not fitted()
    p = panel.heatmap.glw.mapFromScene(vb.mapViewToScene(QPointF(T / 2, T / 2)))
    vp, left, at = panel.heatmap.glw.viewport(), Qt.MouseButton.LeftButton, QPoint(p.x(), p.y())
    qtbot.mouseClick(vp, left, pos=at)  # a double-click as a mouse sends it: click, then double-click
    qtbot.mouseDClick(vp, left, pos=at)
    qtbot.mouseRelease(vp, left, pos=at)
    qtbot.waitUntil(fitted, timeout=2000)


def test_a_model_of_another_shape_rebuilds_the_grid_once(panel, tiny_model, corpus_text):
    from explorer import ExplorerModel, GPTConfig

    panel.set_selection(Selection(layer=1, head=1))
    panel.set_trace(tiny_model.trace(PROMPT))
    vocab = sorted(set(corpus_text))
    other = ExplorerModel.untrained(GPTConfig.lecture(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=3,
                                                      n_embd=12), vocab)
    trace = other.trace("Speak, speak.")
    panel.set_trace(trace)
    assert panel.grid.shape == (1, 3) and panel.grid.indices.shape[:2] == (1, 3)
    assert [t[1] for t in panel.grid.top._tickLevels[0]] == ["head 0", "head 1", "head 2"]
    assert panel.block_spin.maximum() == 0 and panel.head_spin.maximum() == 2
    np.testing.assert_allclose(panel.heatmap._weights, trace.pattern(0)[1])  # layer 1 clamps to block 0
