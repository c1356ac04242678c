"""The embedding panel, driven as a user would: the numbers it draws against scikit-learn and
against constructed embeddings whose answers are known, hover and click, t-SNE in the background
(one job, cancellable, cached), awkward prompts and a 5,000-token vocabulary."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt

from explorer import ExplorerModel, GPTConfig
from explorer.core.projection import ProjectionCache
from explorer.core.tokenizer import display_char
from explorer.gui import theme as th
from explorer.gui.panels.embeddings import EmbeddingPanel, depth_for_layer
from explorer.gui.selection import EMBED, Selection


def _same_up_to_sign(a, b, atol=1e-6):
    return all(np.allclose(a[:, j], b[:, j], atol=atol) or np.allclose(a[:, j], -b[:, j], atol=atol)
               for j in range(a.shape[1]))


@pytest.fixture
def panel(qtbot):
    p = EmbeddingPanel(cache=ProjectionCache(), prewarm_ms=None)
    qtbot.addWidget(p)
    p.resize(900, 650)
    p.show()
    yield p
    p.runner.close()


def _scatter_xy(item):
    x, y = item.getData()
    return np.column_stack([x, y])


def test_token_map_is_sklearn_pca_and_labels_axes(panel, tiny_model):
    from sklearn.decomposition import PCA

    tr = tiny_model.trace("First Citizen")
    panel.set_trace(tr)
    E = tr.params["token_embedding_table.weight"].astype(np.float64)
    ref = PCA(n_components=2).fit(E)
    assert _same_up_to_sign(_scatter_xy(panel.token_view.discs), ref.transform(E))
    assert _same_up_to_sign(_scatter_xy(panel.token_view.labels), ref.transform(E))  # labels sit on the discs
    bottom = panel.token_view.plot.getAxis("bottom").labelText
    assert f"{100 * ref.explained_variance_ratio_[0]:.1f}% of variance" in bottom
    # the prompt's distinct characters are ringed, nothing else
    ringed = _scatter_xy(panel.token_view.halo)
    want = ref.transform(E[sorted(set(tr.ids.tolist()))])
    assert ringed.shape == want.shape and _same_up_to_sign(ringed, want)


def test_positions_and_dimensions_match_sklearn(panel, tiny_model):
    from sklearn.decomposition import PCA

    tr = tiny_model.trace("All:\nSpeak")
    panel.set_trace(tr)
    assert len(panel.pos_view.points.getData()[0]) == 0  # a hidden tab costs nothing per trace…
    panel.tabs.setCurrentIndex(1)  # …and catches up when shown
    P = tr.params["position_embedding_table.weight"].astype(np.float64)
    assert _same_up_to_sign(_scatter_xy(panel.pos_view.points), PCA(2).fit_transform(P))
    panel.tabs.setCurrentIndex(3)
    E = tr.params["token_embedding_table.weight"].astype(np.float64)
    cum = np.cumsum(PCA().fit(E).explained_variance_ratio_)
    k90, k99 = int(np.argmax(cum >= 0.9)) + 1, int(np.argmax(cum >= 0.99)) + 1
    x, y = panel.dims_view.tok.getData()
    np.testing.assert_allclose(y[: len(cum) - 1], 100 * cum[:-1], atol=1e-6)
    text = panel.dims_readout.text()
    assert f"<b>{k90}</b> of {E.shape[1]} dimensions" in text and f"99% in <b>{k99}</b>" in text
    assert len(panel.pos_view.used.getData()[0]) == tr.T  # the prompt's positions are ringed


def test_context_points_and_path_in_token_pca_basis(panel, tiny_model):
    from sklearn.decomposition import PCA

    tr = tiny_model.trace("Before we proceed")
    E = tr.params["token_embedding_table.weight"].astype(np.float64)
    ref = PCA(2).fit(E)
    panel.tabs.setCurrentIndex(2)
    for layer in (EMBED, 0, 1, tr.n_layer):
        panel.set_trace(tr)
        panel.set_selection(Selection(layer=layer, position=4))
        depth = depth_for_layer(layer, tr.n_layer)
        assert _same_up_to_sign(_scatter_xy(panel.context_view.discs), ref.transform(tr.resid(depth)))
    # the path: table row, + position, then each block's output, for the selected token
    tok = int(tr.ids[4])
    steps = np.stack([E[tok]] + [tr.resid(d)[4] for d in range(tr.n_layer + 1)])
    x, y = panel.context_view.path.getData()
    assert _same_up_to_sign(np.column_stack([x, y]), ref.transform(steps))
    assert panel.path_names == ["tok", "+pos", "b0", "b1"]
    np.testing.assert_allclose(steps[1], tr.acts["hook_embed"][4] + tr.acts["hook_pos_embed"][4], atol=1e-5)


def _hover(widget, pos) -> None:
    """A real mouse-move event over ``widget`` (QTest.mouseMove does not reach a QGraphicsView
    offscreen)."""
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    p = QPointF(pos)
    ev = QMouseEvent(QEvent.Type.MouseMove, p, QPointF(widget.mapToGlobal(pos)), Qt.MouseButton.NoButton,
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def _constructed_model():
    """Six tokens on a circle at known angles with known lengths: the neighbours are known."""
    vocab = list("abcdef")
    cfg = GPTConfig.lecture(vocab_size=6, block_size=8, n_layer=1, n_head=1, n_embd=4)
    m = ExplorerModel.untrained(cfg, vocab, name="circle")
    angles = np.radians([0, 10, 40, 95, 180, 200])
    norms = [1.0, 2.0, 0.5, 3.0, 1.5, 0.25]
    with torch.no_grad():
        W = torch.zeros(6, 4)
        W[:, 0] = torch.tensor(np.cos(angles) * norms, dtype=torch.float32)
        W[:, 1] = torch.tensor(np.sin(angles) * norms, dtype=torch.float32)
        m.module.token_embedding_table.weight.copy_(W)
    return m, np.degrees(angles), norms


def test_hover_text_and_click_neighbours_on_constructed_embedding(panel, qtbot):
    m, deg, norms = _constructed_model()
    panel.set_trace(m.trace("ab"))
    # token "a" at 0°: by cosine, b (10°), c (40°), d (95°), f (200° = 160° away), e (180°)
    text = panel.hover_text(0)
    lines = text.splitlines()
    assert lines[0].startswith("a   id 0 · lowercase vowel")
    assert lines[1] == "‖embedding‖ = 1.000"
    expect = [("b", np.cos(np.radians(10))), ("c", np.cos(np.radians(40))), ("d", np.cos(np.radians(95))),
              ("f", np.cos(np.radians(160))), ("e", -1.0)]
    assert lines[3:8] == [f"  {c}   {s:+.3f}" for c, s in expect]
    assert "(in the prompt)" in text
    # pyqtgraph's hover tooltip calls the same function with the point's data
    assert panel.token_view.discs.opts["tip"](x=0.0, y=0.0, data=3) == panel.hover_text(3)
    assert panel.hover_text(3).splitlines()[1] == "‖embedding‖ = 3.000"

    # a real mouse click on token "d" lists its neighbours and draws lines to them
    qtbot.waitExposed(panel)
    plot = panel.token_view.plot
    plot.setRange(xRange=(-4, 4), yRange=(-4, 4), padding=0)
    plot.disableAutoRange()
    qtbot.wait(50)  # let the view apply the range before mapping coordinates
    xy = panel.token_view.coords[3]
    scene = plot.getViewBox().mapViewToScene(QPointF(*xy))
    vp = panel.token_view.widget.mapFromScene(scene)
    _hover(panel.token_view.widget.viewport(), vp)  # hovering shows the same text as a tooltip
    qtbot.waitUntil(lambda: plot.getViewBox().toolTip() == panel.hover_text(3), timeout=2000)
    with qtbot.waitSignal(panel.token_view.discs.sigClicked, timeout=2000):
        qtbot.mouseClick(panel.token_view.widget.viewport(), Qt.MouseButton.LeftButton, pos=vp)
    assert panel.focus == 3
    got = [panel.neighbor_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.neighbor_list.count())]
    d = np.abs((deg - deg[3] + 180) % 360 - 180)
    want = [int(j) for j in np.argsort(d, kind="stable") if j != 3][:5]
    assert got == want
    lx, ly = panel.token_view.lines.getData()
    assert len(lx) == 10 and np.allclose(np.column_stack([lx, ly])[1::2], panel.token_view.coords[want])
    # clicking a neighbour in the list jumps to it
    panel.neighbor_list.itemClicked.emit(panel.neighbor_list.item(0))
    assert panel.focus == want[0]


def test_context_click_requests_position(panel, tiny_model, qtbot):
    tr = tiny_model.trace("Speak, speak")
    panel.tabs.setCurrentIndex(2)
    panel.set_trace(tr)
    with qtbot.waitSignal(panel.selectionRequested, timeout=1000) as sig:
        panel.context_view.discs.sigClicked.emit(panel.context_view.discs,
                                                 [panel.context_view.discs.points()[5]], None)
    assert sig.args == [{"position": 5}]
    assert panel.selection.position == 5
    text = panel.context_text(5)
    assert text.startswith(f"position 5: ‘{display_char(tr.tokens[5])}’")


def test_tsne_single_job_cancel_cache_and_no_recompute_on_new_trace(panel, tiny_model, qtbot):
    tr = tiny_model.trace("First")
    panel.set_trace(tr)
    panel.perplexity.setValue(5)
    panel.iterations.setValue(250)
    panel._debounce.stop()
    with qtbot.waitSignal(panel.runner.progress, timeout=5000):
        panel.method_box.setCurrentIndex(1)  # switching to t-SNE starts the job in the background
    assert panel.runner.busy and panel.runner.jobs_started == 1
    assert panel.run_button.text() == "Cancel" and not panel.progress.isHidden()
    assert panel.request_tsne() is False  # a second request while one runs: no second job
    panel.set_trace(tiny_model.trace("First C"))  # a new trace while it runs: no second job either
    assert panel.runner.jobs_started == 1
    with qtbot.waitSignal(panel.runner.cancelled, timeout=10000):
        qtbot.keyClick(panel.run_button, Qt.Key.Key_Escape)
    assert not panel.runner.busy and panel.method == "pca" and panel.progress.isHidden()
    assert "cancelled" in panel.status.text()

    with qtbot.waitSignal(panel.runner.finished, timeout=60000):
        panel.method_box.setCurrentIndex(1)
    assert panel.runner.jobs_started == 2
    Y = panel.cache.get(panel.tsne_key())
    assert Y.shape == (len(tr.vocab), 2)
    np.testing.assert_allclose(_scatter_xy(panel.token_view.discs), Y)
    assert "t-SNE 1" in panel.token_view.plot.getAxis("bottom").labelText
    # new prompts with the same weights: taken from the cache, nothing recomputed
    for text in ("First Ci", "You are all", ""):
        panel.set_trace(tiny_model.trace(text))
        assert not panel.runner.busy
    assert panel.runner.jobs_started == 2
    np.testing.assert_allclose(_scatter_xy(panel.token_view.discs), Y)
    # back to PCA and to t-SNE again: still cached
    panel.method_box.setCurrentIndex(0)
    panel.method_box.setCurrentIndex(1)
    assert panel.runner.jobs_started == 2


def test_impossible_tsne_setting_is_explained(panel):
    m, _, _ = _constructed_model()
    panel.set_trace(m.trace("abc"))
    assert panel.perplexity.maximum() == 5  # the spin box stops below the number of tokens (6)
    panel.iterations.setMinimum(100)
    panel.iterations.setValue(100)  # below t-SNE's 250: refused with a message, back to PCA
    panel._debounce.stop()
    panel.method_box.setCurrentIndex(1)
    assert panel.method == "pca" and panel.method_box.currentIndex() == 0
    assert "at least 250 iterations" in panel.status.text()
    assert panel.runner.jobs_started == 0 and not panel.runner.busy


def test_worker_is_prewarmed_after_the_first_trace(qtbot, tiny_model):
    p = EmbeddingPanel(cache=ProjectionCache(), prewarm_ms=0)
    qtbot.addWidget(p)
    try:
        assert p.runner.worker is None
        p.set_trace(tiny_model.trace("All"))
        qtbot.waitUntil(lambda: p.runner.worker is not None and p.runner.worker._proc is not None, timeout=10000)
        assert p.runner.worker._proc.poll() is None and p.runner.jobs_started == 0
        assert p.method == "pca"  # warming up computes nothing
    finally:
        p.runner.close()


@pytest.mark.parametrize("text", ["", "F", "First Citizen:\n" * 3])  # empty, 1 token, over block_size
def test_awkward_prompts_render(panel, tiny_model, text):
    tr = tiny_model.trace(text)
    panel.tabs.setCurrentIndex(2)
    panel.set_trace(tr)
    panel.set_selection(Selection(layer=1, position=None))
    assert tr.T == min(len([c for c in text if c in tr.vocab]), tr.config.block_size)
    assert len(panel.context_view.discs.getData()[0]) == tr.T
    if tr.T == 0:
        px = panel.context_view.path.getData()[0]
        assert panel.context_view.message.isVisible() and (px is None or len(px) == 0)
    else:
        assert len(panel.context_view.path.getData()[0]) == tr.n_layer + 2
    data = panel.export_data()
    assert len(data["embedding_tokens"].rows) == len(tr.vocab)
    assert len(data["embedding_context"].rows) == (tr.n_layer + 1) * tr.T
    views = panel.export_views()
    assert [v.name for v in views] == ["embedding_tokens", "embedding_positions", "embedding_context",
                                       "embedding_dimensions"]
    assert all(v.widget is not None and v.title for v in views)


def test_export_table_rows_match_the_plot(panel, tiny_model):
    tr = tiny_model.trace("hear me")
    panel.set_trace(tr)
    table = panel.export_data()["embedding_tokens"]
    col = {c: i for i, c in enumerate(table.columns)}
    xy = _scatter_xy(panel.token_view.discs)
    for i, row in enumerate(table.rows):
        assert row[col["id"]] == i and row[col["char"]] == tr.vocab[i]
        assert row[col["x"]] == pytest.approx(xy[i, 0]) and row[col["y"]] == pytest.approx(xy[i, 1])
        assert row[col["in_prompt"]] == int(i in set(tr.ids.tolist()))
    first = table.rows[0][col["nearest_cosine"]].split()
    assert len(first) == 5


def test_export_when_the_tables_have_different_numbers_of_axes(panel):
    # 6 tokens × 8 dims (6 PCA axes) next to 16 positions × 8 dims (8 axes)
    cfg = GPTConfig.lecture(vocab_size=6, block_size=16, n_layer=1, n_head=2, n_embd=8)
    m = ExplorerModel.untrained(cfg, list("abcdef"), name="six")
    panel.set_trace(m.trace("abcabc"))
    var = panel.export_data()["embedding_variance"]
    assert len(var.rows) == 8
    assert var.rows[5][1] == pytest.approx(1.0) and var.rows[6][1] == "" and var.rows[7][2] == pytest.approx(1.0)
    x, y = panel.dims_view.tok.getData()
    assert len(x) == 6 and len(panel.dims_view.pos.getData()[0]) == 8


def test_big_vocabulary_labels_only_what_matters(panel):
    vocab = [chr(0x4E00 + i) for i in range(4990)] + list("abcde fghi")
    cfg = GPTConfig.lecture(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=1, n_embd=16)
    m = ExplorerModel.untrained(cfg, vocab, name="big")
    tr = m.trace("abc de")
    panel.set_trace(tr)
    assert len(panel.token_view.discs.getData()[0]) == 5000
    assert len(panel.token_view.labels.getData()[0]) == 0  # no 5,000 labels
    shown = set(panel.token_view.focus_discs.data["data"].tolist())
    assert set(tr.ids.tolist()) <= shown and len(shown) <= len(set(tr.ids.tolist())) + 5
    panel.set_trace(m.trace("abd"))
    assert panel.hover_text(4990).startswith("a   id 4990")


def test_theme_follows_palette(panel, tiny_model):
    from PySide6.QtGui import QColor, QPalette

    panel.set_trace(tiny_model.trace("All"))
    pal = panel.palette()
    pal.setColor(QPalette.ColorRole.Window, QColor("#202020"))
    panel.setPalette(pal)
    assert panel.theme is th.DARK
    assert panel.token_view.widget.backgroundBrush().color().name().upper() == th.DARK.background
    panel.apply_theme(th.LIGHT)
    assert panel.token_view.widget.backgroundBrush().color().name().upper() == th.LIGHT.background
