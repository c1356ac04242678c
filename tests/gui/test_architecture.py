"""The architecture navigator: the tree shows the model's real parts and shapes, clicking a part
selects it in every view, and the side box explains it with this model's numbers."""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from explorer.gui.selection import EMBED


def _row(tree, item) -> list[str]:
    return [item.text(c) for c in range(tree.columnCount())]


def test_the_tree_shows_the_modules_with_true_shapes_and_counts(light_window, tiny_model):
    arch = light_window.architecture
    tree = arch.tree
    cfg = tiny_model.config
    V, C = cfg.vocab_size, cfg.n_embd
    top = tree.topLevelItem(0)
    assert _row(tree, top)[0] == "model: GPT" and _row(tree, top)[2] == f"{tiny_model.n_params:,}"
    children = [top.child(i).text(0) for i in range(top.childCount())]
    assert children == ["token_embedding_table: Embedding", "position_embedding_table: Embedding",
                        "blocks: Sequential", "ln_f: LayerNorm", "lm_head: Linear"]
    lm = arch.items["lm_head"]
    assert _row(tree, lm)[1] == f"weight ({V}, {C}) · bias ({V},)"
    assert _row(tree, lm)[2] == f"{V * C + V:,}"
    blocks = arch.items["blocks"]
    assert [blocks.child(i).text(0) for i in range(blocks.childCount())] == ["(0): Block", "(1): Block"]
    block0 = arch.items["blocks.0"]
    assert [block0.child(i).text(0).split(":")[0] for i in range(block0.childCount())] == ["ln1", "sa", "ln2", "ffwd"]
    sa = arch.items["blocks.0.sa"]
    assert [sa.child(i).text(0) for i in range(cfg.n_head)] == [f"head {h}: Head" for h in range(cfg.n_head)]
    assert _row(tree, arch.items["blocks.0.sa.qkv"])[1] == f"weight ({3 * C}, {C})"
    assert _row(tree, arch.items["blocks.0.ln1"])[1] == f"weight ({C},) · bias ({C},)"
    params = dict(tiny_model.module.named_parameters())
    for path in ("blocks.1.ffwd.net.0", "blocks.1.sa.proj", "token_embedding_table"):
        own = sum(p.numel() for n, p in params.items() if n.startswith(path + "."))
        assert _row(tree, arch.items[path])[2] == f"{own:,}", path
    for item in arch.items.values():
        assert item.toolTip(0), item.text(0)


def test_clicking_a_head_selects_it_in_every_view(light_window, qtbot, synced):
    w = light_window
    arch, tree = w.architecture, w.architecture.tree
    item = arch.items["blocks.1.sa.heads.1"]
    item.parent().setExpanded(True)
    arch.items["blocks.1"].setExpanded(True)
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    trace = w.controller.trace
    with qtbot.waitSignal(w.controller.selectionChanged, timeout=2000):
        x = min(rect.left() + 20, tree.viewport().width() - 2)  # on the row's label, inside a narrow dock
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, rect.center().y()))
    sel = w.controller.selection
    assert (sel.layer, sel.head, sel.ln_site) == (1, 1, "blocks.1.ln1")
    for name, panel in synced(w).items():
        assert panel.selection == sel, name
    assert w.controller.trace is trace  # no new forward pass
    assert arch.marked_paths() == {"blocks.1", "blocks.1.sa.heads.1", "blocks.1.ln1"}
    assert item.font(0).bold() and not arch.items["blocks.0"].font(0).bold()
    info = arch.info.toPlainText()
    assert "Head 1 of block 1" in info and "head_size" in info


def test_layernorm_embedding_and_head_nodes_select_their_part(light_window, synced):
    w = light_window
    synced(w)
    arch, c = w.architecture, w.controller
    arch.select_path("blocks.1.ln2")
    assert (c.selection.layer, c.selection.ln_site) == (1, "blocks.1.ln2")
    arch.select_path("token_embedding_table")
    assert c.selection.layer == EMBED
    synced(w)
    assert arch.marked_paths() == {"token_embedding_table", "position_embedding_table"}
    arch.select_path("ln_f")
    assert (c.selection.layer, c.selection.ln_site) == (2, "ln_final")
    arch.select_path("lm_head")
    info = arch.info.toPlainText()
    V, C = c.model_info.config.vocab_size, c.model_info.config.n_embd
    assert "x @ W.T + b" in info and f"({V}, {C})" in info
    T = c.trace.T
    assert arch.live.text() == f"For the current prompt T = {T}: (1, {T}, {C}) → (1, {T}, {V})"


def test_a_selection_made_elsewhere_is_marked_in_the_tree(light_window, synced):
    w = light_window
    w.controller.select(layer=0, head=1, ln_site="blocks.0.ln2")
    synced(w)
    assert w.architecture.marked_paths() == {"blocks.0", "blocks.0.sa.heads.1", "blocks.0.ln2"}
    w.controller.step_layer(+1)
    synced(w)
    assert w.architecture.marked_paths() == {"blocks.1", "blocks.1.sa.heads.1", "blocks.1.ln2"}


def test_arrow_keys_walk_the_tree_and_follow_along(light_window, qtbot):
    w = light_window
    tree = w.architecture.tree
    tree.setFocus()
    tree.setCurrentItem(w.architecture.items["blocks.0"])
    qtbot.keyClick(tree, Qt.Key.Key_Down)  # → blocks.0.ln1
    assert w.controller.selection.ln_site == "blocks.0.ln1"
    qtbot.keyClick(tree, Qt.Key.Key_Down)  # → blocks.0.sa
    assert tree.currentItem() is w.architecture.items["blocks.0.sa"]
    assert "Multi-head causal self-attention of block 0" in w.architecture.info.toPlainText()


def test_a_new_model_rebuilds_the_tree(light_window, qtbot, tmp_path):
    from explorer import ExplorerModel, GPTConfig

    vocab = list("\n abcdefghij")
    cfg = GPTConfig.nanogpt(vocab_size=len(vocab), block_size=8, n_layer=3, n_head=2, n_embd=8)
    path = tmp_path / "three_layers.safetensors"
    ExplorerModel.untrained(cfg, vocab).save(path)
    w = light_window
    w.controller.select(layer=2, head=1)  # ln_f / lm_head of the 2-layer model
    with qtbot.waitSignal(w.controller.modelChanged, timeout=20000):
        w.open_path(str(path))
    qtbot.waitUntil(lambda: w.controller.trace.model_name == "three_layers", timeout=20000)
    assert w.controller.selection.layer == 3  # still ln_f / lm_head, not block 2
    assert w.controller.selection.ln_site == "ln_final"
    arch = w.architecture
    assert "blocks.2" in arch.items and "blocks.3" not in arch.items
    assert "(tied)" in arch.items["lm_head"].text(1)
    assert arch.items["lm_head"].text(2).endswith("(shared)")
