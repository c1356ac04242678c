"""The main window as a user meets it: the loading state, the status bar, docks and layout, saved
settings, shortcuts, and opening and saving models (including broken files)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel

import explorer
from explorer.gui.main_window import MainWindow
from explorer.gui.panels import ANALYSIS_PANELS
from explorer.gui.selection import EMBED

from conftest import close_window  # tests/gui/conftest.py


@pytest.fixture
def window(light_window):
    """These tests are about the window itself: the analysis panels are not needed."""
    return light_window


def test_window_paints_a_loading_state_before_any_model(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.status_labels["model"].text() == "loading model…"
    assert w.busy.isVisible()
    assert w.controller.model_info is None
    names = {"dock_prompt", "dock_architecture", "dock_training"} | {s.object_name for s in ANALYSIS_PANELS}
    assert set(w.docks) == names
    for name, dock in w.docks.items():
        if name != "dock_prompt":
            assert isinstance(dock.widget(), QLabel) and "Loading" in dock.widget().text()
    assert w.prompt_bar.text() == "ROMEO:\nBut soft, what light"
    qtbot.waitUntil(lambda: w.prompt_bar.edit.hasFocus(), timeout=3000)
    w.close()
    assert not w.controller.thread.isRunning()


def test_the_window_is_built_and_painted_before_torch_is_imported():
    """The window shows at once and torch loads behind it: building and painting the main window
    must not import torch (nor scikit-learn), in a fresh interpreter."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from explorer.gui.app import make_app\n"
        "app = make_app()\n"
        "from explorer.gui.main_window import MainWindow\n"
        "w = MainWindow(); w.show(); app.processEvents()\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'sklearn': 'sklearn' in sys.modules,\n"
        "                  'painted': w.isVisible()}))\n"
        "w.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"torch": False, "sklearn": False, "painted": True}


def test_status_bar_describes_the_loaded_model(window, tiny_model):
    cfg = tiny_model.config
    lab = window.status_labels
    assert "tiny" in lab["model"].text() and "lecture" in lab["model"].text()
    assert lab["params"].text() == f"{tiny_model.n_params:,} params"
    assert lab["vocab"].text() == f"vocab {cfg.vocab_size}"
    assert lab["block"].text() == f"block {cfg.block_size}"
    ms = window.controller.trace.elapsed_ms
    assert lab["trace"].text() == f"trace {ms:.0f} ms"
    assert not window.busy.isVisible()
    assert window.windowTitle().startswith("tiny")


def test_first_start_fits_the_screen(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    avail = w.screen().availableGeometry()
    g = w.geometry()
    assert avail.contains(g)
    assert g.width() == pytest.approx(0.9 * avail.width(), abs=2)
    assert g.height() == pytest.approx(0.9 * avail.height(), abs=2)
    w.close()


def test_every_panel_dock_is_movable_closable_and_reopened_from_the_view_menu(window):
    for name, dock in window.docks.items():
        f = dock.features()
        assert f & QDockWidget.DockWidgetFeature.DockWidgetMovable
        assert f & QDockWidget.DockWidgetFeature.DockWidgetFloatable
        assert bool(f & QDockWidget.DockWidgetFeature.DockWidgetClosable) == (name != "dock_prompt")
    dock = window.docks["dock_attention"]
    view_actions = [a for a in window.view_menu.actions() if a.text() == "Attention"]
    assert len(view_actions) == 1
    dock.close()
    assert not dock.isVisible() and not view_actions[0].isChecked()
    view_actions[0].trigger()
    assert dock.isVisible()
    dock.setFloating(True)
    window.docks["dock_logits"].close()
    window.reset_layout()
    assert all(d.isVisible() and not d.isFloating() for d in window.docks.values())
    assert window.dockWidgetArea(window.docks["dock_prompt"]) == Qt.DockWidgetArea.TopDockWidgetArea
    assert window.dockWidgetArea(window.docks["dock_architecture"]) == Qt.DockWidgetArea.LeftDockWidgetArea


def test_layout_and_geometry_are_restored_on_the_next_start(qtbot, make_window, model_file):
    w = make_window(model_file, all_panels=False)
    w.setGeometry(30, 40, 700, 560)
    w.docks["dock_embeddings"].close()
    close_window(w)
    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.show()
    assert w2.geometry().size().toTuple() == (700, 560)
    assert not w2.docks["dock_embeddings"].isVisible()
    assert w2.docks["dock_attention"].isVisible()
    w2.close()


def test_keyboard_shortcuts_cover_the_main_actions(window, qtbot):
    keys = dict(window.shortcut_table())
    for key in ("Ctrl+O", "Ctrl+Shift+S", "Ctrl+T", "Ctrl+L", "Ctrl+Q", "Alt+Down", "Alt+Up", "Alt+Right",
                "Alt+Left", "Alt+Shift+Right", "Alt+Shift+Left", "F1"):
        assert key in keys, key
    c = window.controller
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    qtbot.keyClick(window.prompt_bar.edit, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert c.selection.layer == 1
    qtbot.keyClick(window.prompt_bar.edit, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert c.selection.head == 1
    qtbot.keyClick(window.prompt_bar.edit, Qt.Key.Key_Left,
                   Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ShiftModifier)
    assert c.selection.position == c.trace.T - 2
    for _ in range(5):
        qtbot.keyClick(window.prompt_bar.edit, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert c.selection.layer == EMBED  # clamped at the embeddings
    assert window.prompt_bar.text() == "First Citizen:\nBefore"  # the shortcuts did not type anything


def test_every_action_and_status_field_has_a_tooltip(window):
    for action in window.actions():
        if action.text():
            assert action.toolTip() and action.toolTip() != action.text().replace("&", ""), action.text()
    for label in window.status_labels.values():
        assert label.toolTip()


def test_opening_a_corrupt_file_shows_an_error_and_keeps_the_model(window, qtbot, tmp_path, dialogs):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + bytes(range(200)))
    before = window.controller.model_info
    with qtbot.waitSignal(window.controller.modelLoadFailed, timeout=20000):
        window.open_path(str(bad))
    errors = dialogs.of_kind("critical")
    assert len(errors) == 1
    _, title, text = errors[0]
    assert "broken.safetensors" in title and str(bad) in text
    assert "previous model stays loaded" in text
    assert window.controller.model_info is before
    # the old model still works: an edit is traced by it
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000) as sig:
        window.prompt_bar.set_text("First")
    assert sig.args[0].model_name == "tiny" and sig.args[0].text == "First"
    assert window.status_labels["params"].text() == f"{before.n_params:,} params"


def test_a_missing_file_names_the_file(window, qtbot, tmp_path, dialogs):
    with qtbot.waitSignal(window.controller.modelLoadFailed, timeout=20000):
        window.open_path(str(tmp_path / "nope.pt"))
    (_, title, text), = dialogs.of_kind("critical")
    assert "nope.pt" in text and "no such file" in text


def _lecture_state_dict(model) -> dict:
    """The lecture script's state_dict layout (per-head key/query/value Linear layers)."""
    sd = {k: v.clone() for k, v in model.module.state_dict().items()}
    cfg = model.config
    C, H, hs = cfg.n_embd, cfg.n_head, cfg.head_size
    out = {}
    for k, v in sd.items():
        if ".sa.qkv." in k:
            i = k.split(".")[1]
            for j, kind in enumerate(("query", "key", "value")):
                for h in range(H):
                    out[f"blocks.{i}.sa.heads.{h}.{kind}.weight"] = v[j * C + h * hs: j * C + (h + 1) * hs].clone()
        else:
            out[k.replace(".sa.proj.", ".sa.proj.")] = v
    return out


def test_a_lecture_file_asks_for_its_corpus_and_opens(window, qtbot, tmp_path, dialogs, corpus_text):
    from explorer import ExplorerModel, GPTConfig

    vocab = sorted(set(corpus_text))
    cfg = GPTConfig.lecture(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=2, n_embd=16)
    ref = ExplorerModel.untrained(cfg, vocab, seed=3)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in ref.module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    pt = tmp_path / "lecture_model.pt"
    torch.save(_lecture_state_dict(ref), pt)
    corpus = tmp_path / "input.txt"
    corpus.write_text(corpus_text, encoding="utf-8")
    dialogs.answers["open"] = [str(corpus)]
    with qtbot.waitSignal(window.controller.modelChanged, timeout=30000) as sig:
        window.open_path(str(pt))
    assert dialogs.of_kind("information") and "needs its vocabulary" in dialogs.of_kind("information")[0][1]
    info = sig.args[0]
    assert info.name == "lecture_model" and info.vocab == tuple(vocab)
    qtbot.waitUntil(lambda: window.controller.trace is not None
                    and window.controller.trace.model_name == "lecture_model", timeout=20000)
    trace = window.controller.trace
    expected = ref.trace(trace.text)
    np.testing.assert_allclose(trace.logits, expected.logits, atol=1e-5)
    assert window.status_labels["vocab"].text() == f"vocab {len(vocab)}"
    assert not dialogs.of_kind("critical")


def test_a_nanogpt_file_asks_for_meta_pkl(window, qtbot, tmp_path, dialogs):
    from explorer import ExplorerModel, GPTConfig

    vocab = list("\n abcdefgh")
    cfg = GPTConfig.nanogpt(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=2, n_embd=16)
    ref = ExplorerModel.untrained(cfg, vocab, seed=5)
    sd = ref.module.state_dict()
    names = {"token_embedding_table.weight": "transformer.wte.weight",
             "position_embedding_table.weight": "transformer.wpe.weight",
             "ln_f.weight": "transformer.ln_f.weight", "ln_f.bias": "transformer.ln_f.bias",
             "lm_head.weight": "lm_head.weight"}
    model = {}
    for k, v in sd.items():
        if k in names:
            model[names[k]] = v
        else:
            k2 = (k.replace("blocks.", "transformer.h.").replace(".ln1.", ".ln_1.").replace(".ln2.", ".ln_2.")
                  .replace(".sa.qkv.", ".attn.c_attn.").replace(".sa.proj.", ".attn.c_proj.")
                  .replace(".ffwd.net.0.", ".mlp.c_fc.").replace(".ffwd.net.2.", ".mlp.c_proj."))
            model[k2] = v
    folder = tmp_path / "out-x"
    folder.mkdir()
    ckpt = folder / "ckpt.pt"
    torch.save({"model": model, "model_args": dict(n_layer=1, n_head=2, n_embd=16, block_size=16, bias=True,
                                                   vocab_size=len(vocab))}, ckpt)
    meta = tmp_path / "elsewhere_meta.pkl"
    meta.write_bytes(pickle.dumps({"vocab_size": len(vocab), "itos": dict(enumerate(vocab)),
                                   "stoi": {c: i for i, c in enumerate(vocab)}}))
    dialogs.answers["open"] = [str(meta)]
    with qtbot.waitSignal(window.controller.modelChanged, timeout=30000) as sig:
        window.open_path(str(ckpt))
    assert sig.args[0].config.family == "nanogpt" and sig.args[0].vocab == tuple(vocab)


def test_cancelling_the_corpus_question_keeps_the_model(window, qtbot, tmp_path, dialogs, tiny_model):
    pt = tmp_path / "lecture.pt"
    torch.save(_lecture_state_dict(tiny_model), pt)
    before = window.controller.model_info
    with qtbot.waitSignal(window.controller.modelLoadFailed, timeout=20000):
        window.open_path(str(pt))
    assert dialogs.of_kind("open")  # it asked for the corpus; the user cancelled
    assert window.controller.model_info is before and not window.controller.loading


def test_dropping_a_checkpoint_on_the_window_opens_it(window, qtbot, tmp_path, tiny_model):
    other = tmp_path / "dropped_model.safetensors"
    tiny_model.save(other)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.controller.modelChanged, timeout=20000) as sig:
        window.dropEvent(event)
    assert sig.args[0].name == "dropped_model"
    # a file dropped on the prompt opens too, instead of pasting its path into the prompt
    with qtbot.waitSignal(window.controller.modelChanged, timeout=20000):
        window.prompt_bar.edit.insertFromMimeData(mime)
    assert "dropped_model" not in window.prompt_bar.text()


def test_save_as_writes_a_native_file_and_adds_it_to_open_recent(window, qtbot, tmp_path, dialogs, tiny_model):
    target = tmp_path / "saved copy"  # no extension: .safetensors is added
    dialogs.answers["save"] = [str(target)]
    with qtbot.waitSignal(window.controller.modelSaved, timeout=20000) as sig:
        window.save_dialog()
    path = sig.args[0]
    assert path.endswith("saved copy.safetensors")
    loaded = explorer.load(path)
    for k, v in tiny_model.module.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[k], v), k
    recent = [a.toolTip() for a in window.recent_menu.actions() if a.toolTip()]
    assert path in recent[0]


def test_open_recent_reopens_a_file(window, qtbot, model_file):
    entries = [a for a in window.recent_menu.actions() if a.toolTip().endswith("tiny.safetensors")]
    assert entries, "the opened model is listed under Open Recent"
    with qtbot.waitSignal(window.controller.modelChanged, timeout=20000) as sig:
        entries[0].trigger()
    assert sig.args[0].source.endswith("tiny.safetensors")


def test_saving_to_an_unwritable_place_shows_an_error(window, qtbot, tmp_path, dialogs):
    dialogs.answers["save"] = [str(tmp_path / "no" / "such" / "folder" / "m.safetensors")]
    with qtbot.waitSignal(window.controller.modelSaveFailed, timeout=20000):
        window.save_dialog()
    (_, title, text), = dialogs.of_kind("critical")
    assert "Could not save" in title and "does not exist" in text


def test_without_a_bundled_model_the_window_says_what_to_do(qtbot, tmp_path, monkeypatch, dialogs):
    monkeypatch.setenv("GPT_EXPLORER_RESOURCES", str(tmp_path / "empty"))
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.controller.modelLoadFailed, timeout=60000):
        w.controller.warm()
        w.controller.open_model(None)
    assert w.status_labels["model"].text() == "no model loaded"
    assert not dialogs.of_kind("critical")  # no modal error at start-up, the window says it
    assert "open a checkpoint (Ctrl+O) or train one (Ctrl+T)" in w.prompt_bar.notice.text()
    assert "bundled default model is missing" in w.statusBar().currentMessage()
    w.close()


def test_a_bad_checkpoint_on_the_command_line_says_so_and_what_to_do(qtbot, tmp_path, dialogs):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a model", encoding="utf-8")
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.controller.modelLoadFailed, timeout=60000):
        w.controller.warm()
        w.controller.open_model(str(bad))
    (_, title, text), = dialogs.of_kind("critical")
    assert "notes.txt" in title and "text file, not a checkpoint" in text and "Ctrl+O" in text
    assert w.status_labels["model"].text() == "no model loaded"
    assert "Ctrl+T" in w.prompt_bar.notice.text() and not w.busy.isVisible()
    w.close()


def test_a_65_token_lecture_file_without_corpus_says_what_it_assumed(window, qtbot, tmp_path):
    from explorer import ExplorerModel, GPTConfig
    from explorer.core.tokenizer import TINY_SHAKESPEARE_VOCAB

    cfg = GPTConfig.lecture(vocab_size=65, block_size=8, n_layer=1, n_head=1, n_embd=8)
    pt = tmp_path / "shakespeare_lecture.pt"
    torch.save(_lecture_state_dict(ExplorerModel.untrained(cfg, list(TINY_SHAKESPEARE_VOCAB))), pt)
    with qtbot.waitSignal(window.controller.modelChanged, timeout=30000) as sig:
        window.open_path(str(pt))
    assert sig.args[0].warnings and "Tiny Shakespeare alphabet" in sig.args[0].warnings[0]
    assert "Tiny Shakespeare alphabet" in window.statusBar().currentMessage()


def test_file_menu_exports_the_current_figure_set(make_window, model_file, tmp_path):
    """File → Export is wired to the real window: its figure-set action is enabled once a trace is
    shown, and the same export writes every panel's views with an index.html."""
    window = make_window(model_file)
    from explorer.gui.export import FigureContext, export_figure_set

    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    export_menu = next(a.menu() for a in file_menu.actions() if a.menu() is not None and "Export" in a.text())
    texts = [a.text().replace("&", "") for a in export_menu.actions() if a.text()]
    assert any("figure set" in t.lower() for t in texts) and any("Export view" in t for t in texts)
    assert all(a.isEnabled() for a in export_menu.actions() if a.text())
    ctx = FigureContext.from_trace(window.controller.trace, window.controller.selection)
    result = export_figure_set(list(window.panels.values()), tmp_path / "set", ctx, formats="png")
    index = (tmp_path / "set" / "index.html").read_text(encoding="utf-8")
    pngs = sorted(p.name for p in (tmp_path / "set").glob("*.png"))
    assert len(pngs) >= 10 and all(name in index for name in pngs)
    assert result is not None
