"""The real panels through the export machinery, and ``python -m explorer export``:

* every view of every panel (architecture, embeddings, LayerNorm, attention, logits) in PNG, SVG
  and PDF, checked as files;
* the headless command's figures equal the GUI's export of the same trace (same PNG size, the same
  pixels), for panels built alone and for the panels of the real main window;
* the command's failures: one line on stderr, exit status 2, nothing written.
"""
from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PySide6.QtGui import QImage

from explorer.__main__ import main as cli
from explorer.gui.export import ExportDialog, context_for
from explorer.gui.export_headless import build_panels, close_panels, selection_for
from explorer.gui.selection import Selection
from test_export_support import shared_model

PROMPT = "First Citizen:\nSpeak, speak"
SIZE = (900, 600)
VIEWS = {  # the views each panel exports (the contract the figure set relies on)
    "Architecture": {"architecture"},
    "Embeddings": {"embedding_tokens", "embedding_positions", "embedding_context", "embedding_dimensions"},
    "LayerNorm": {"layernorm_positions", "layernorm_gain_bias", "layernorm_histogram", "layernorm_depth",
                  "layernorm_example"},
    "Attention": {"attention_heatmap", "attention_heads", "attention_text"},
    "Logits": {"logits_next_char", "logit_lens", "predictions_strip", "lm_head_linear"},
}


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli(["export", *map(str, args)])
    return rc, out.getvalue(), err.getvalue()


def pixels(path: Path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3).copy()


def n_colours(a: np.ndarray) -> int:
    rgb = a.reshape(-1, 3).astype(np.uint32)
    return len(np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    shared_model().save(path)
    return path


@pytest.fixture(scope="module")
def headless(qapp, checkpoint, tmp_path_factory):
    """One run of the command: every panel, every format, block 1 head 1 position 4."""
    out = tmp_path_factory.mktemp("cli") / "Figures für Folien"
    rc, stdout, stderr = run_cli("--checkpoint", checkpoint, "--prompt", PROMPT, "--out", out, "--format",
                                 "png,svg,pdf", "--layer", 1, "--head", 1, "--position", 4, "--size", "900x600",
                                 "--scale", 1)
    return rc, stdout, stderr, out


def test_command_writes_every_view_of_every_panel_in_every_format(headless):
    rc, stdout, stderr, out = headless
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    printed = {Path(line) for line in stdout.splitlines()}
    on_disk = {p for p in out.rglob("*") if p.is_file()}
    assert printed == on_disk
    for panel, views in VIEWS.items():
        for name in views:
            png, svg, pdf = (out / f"{name}.{ext}" for ext in ("png", "svg", "pdf"))
            a = pixels(png)
            assert a.shape[0] > 100 and a.shape[1] > 100, name
            assert n_colours(a) > 8, f"{name}.png looks blank"
            assert tuple(a[1, 1]) == (255, 255, 255), f"{name}.png: white background by default"
            root = ET.fromstring(svg.read_bytes())
            tags = [el.tag.rsplit("}", 1)[-1] for el in root.iter()]
            assert tags.count("text") + tags.count("path") + tags.count("image") + tags.count("polyline") >= 5, name
            data = pdf.read_bytes()
            assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1, name
    # the attention heatmap's cells are coloured, unlike the background
    a = pixels(out / "attention_heatmap.png")
    h, w = a.shape[:2]
    centre = a[h // 3: 2 * h // 3, w // 4: 3 * w // 4].astype(int)
    assert np.abs(centre - 255).sum(-1).mean() > 60 and n_colours(centre) > 10


def test_command_index_references_every_file(headless):
    _rc, _out, _err, out = headless

    class Refs(HTMLParser):
        refs: set = set()

        def handle_starttag(self, tag, attrs):
            self.refs |= {unquote(v) for k, v in attrs if k in ("href", "src", "data") and v}
    parser = Refs()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert parser.refs == files - {"index.html"}
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "block 1" in html and "4 ‘t’" in html and "python -m explorer export" in html
    with np.load(out / "data" / "trace.npz") as z:
        assert "blocks.1.attn.hook_pattern" in z.files


def compare(gui_png: Path, cli_png: Path, shift: int = 0, tolerance: float = 0.005) -> None:
    """Same size; every pixel within 8 levels of the other image's pixel, allowing the content to sit
    up to ``shift`` pixels off (a view box settled a pixel apart); at most ``tolerance`` of the
    pixels may differ."""
    a, b = pixels(gui_png).astype(np.int16), pixels(cli_png).astype(np.int16)
    assert a.shape == b.shape, f"{cli_png.name}: {a.shape} vs {b.shape}"
    h, w = a.shape[:2]
    s = shift
    core = a[s: h - s, s: w - s]
    best = np.full(core.shape[:2], 255, np.int16)
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            other = b[s + dy: h - s + dy, s + dx: w - s + dx]
            best = np.minimum(best, np.abs(core - other).max(-1))
    bad = (best > 8).mean()
    assert bad < tolerance, f"{cli_png.name}: {bad:.2%} of pixels differ"


def test_headless_figures_equal_the_gui_export_of_the_same_trace(qtbot, headless, checkpoint, tmp_path):
    """The panels built as the window builds them, fed the same trace and selection, exported with
    the Export view dialog: the same images as the command's."""
    _rc, _out, _err, out = headless
    import explorer

    model = explorer.load(checkpoint)
    trace = model.trace(PROMPT)
    sel = selection_for(trace, layer=1, head=1, position=4)
    assert sel == Selection(layer=1, ln_site="blocks.1.ln1", head=1, position=4)
    panels, skipped = build_panels(model, trace, sel, size=SIZE)
    try:
        assert not skipped
        assert {p.title for p in panels} == set(VIEWS)
        for p in panels:
            assert {v.name for v in p.export_views()} == VIEWS[p.title]
            for view in p.export_views():
                dlg = ExportDialog(None, panels, p, view)
                qtbot.addWidget(dlg)
                dlg.set_choice(fmt="png", scale=1, path=tmp_path / f"{view.name}.png")
                compare(dlg.export_now(), out / f"{view.name}.png")
    finally:
        close_panels(panels)


def test_the_main_windows_panels_export_what_headless_panels_export(make_window, model_file, qtbot, tmp_path):
    """The real window's attention panel (in its dock, at the size and splitter positions the window
    gave it) and the headless panel the command builds, fed the window's own trace and selection
    and given the same size and splitter positions, export the same images."""
    from PySide6.QtWidgets import QSplitter

    from explorer.gui.export import export_view
    from explorer.gui.export_headless import settle

    w = make_window(model_file, PROMPT)
    qtbot.waitUntil(lambda: "dock_attention" in w.panels, timeout=30000)
    dock = w.docks["dock_attention"]  # float it at a desktop size (the offscreen screen is small)
    dock.setFloating(True)
    dock.resize(1000, 760)
    w.controller.select(layer=1, head=1, position=4)
    panel = w.panels["dock_attention"]
    qtbot.waitUntil(lambda: panel.trace is not None and panel.selection.head == 1, timeout=10000)
    qtbot.waitUntil(lambda: panel.width() >= 500, timeout=5000)
    import explorer

    model = explorer.load(model_file)
    panels, _skipped = build_panels(model, w.controller.trace, w.controller.selection,
                                    size=(panel.width(), panel.height()), architecture=False)
    try:
        twin = next(p for p in panels if type(p) is type(panel))
        for _ in range(3):  # the window may still be settling its docks: follow it until both agree
            qtbot.wait(100)
            twin.resize(panel.size())
            for mine, theirs in zip(twin.findChildren(QSplitter), panel.findChildren(QSplitter)):
                mine.restoreState(theirs.saveState())
            settle(0.05)
        assert twin.size() == panel.size()
        assert twin.heatmap.glw.size() == panel.heatmap.glw.size()
        for view, twin_view in zip(panel.export_views(), twin.export_views()):
            assert view.name == twin_view.name and view.title == twin_view.title
            dlg = ExportDialog(w, list(w.panels.values()), panel, view)
            qtbot.addWidget(dlg)
            dlg.set_choice(fmt="png", scale=2, path=tmp_path / f"gui_{view.name}.png")
            ctx = context_for(panels, twin)
            compare(dlg.export_now(), export_view(twin_view, tmp_path / f"cli_{view.name}.png", ctx, scale=2),
                    shift=3, tolerance=0.01)
    finally:
        close_panels(panels)


# ---- failures ---------------------------------------------------------------------------------
def test_a_bad_checkpoint_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a model")
    out = tmp_path / "figs"
    proc = subprocess.run([sys.executable, "-m", "explorer", "export", "--checkpoint", str(bad), "--prompt", "a",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpt-explorer export: error:") and "notes.txt" in lines[0]
    assert "Traceback" not in proc.stderr and not out.exists()


def test_an_unwritable_folder_is_one_line_and_nothing_is_written(qapp, checkpoint, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    rc, stdout, stderr = run_cli("--checkpoint", checkpoint, "--prompt", PROMPT, "--out", blocker / "figs",
                                 "--no-data")
    assert rc == 2 and stdout == ""
    assert stderr.strip().splitlines() == [
        f"gpt-explorer export: error: cannot create the folder {blocker}: {blocker} is a file, not a folder"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "settings") == ["a file"]


@pytest.mark.parametrize("args, message", [
    (["--layer", "5"], "--layer 5 is out of range"),
    (["--head", "2"], "--head 2 is out of range: the model has heads 0..1"),
    (["--position", "99"], "--position is out of range"),
    (["--ln-site", "blocks.9.ln1"], "is not a LayerNorm of this model"),
    (["--format", "png,gif"], "unknown figure format 'gif'"),
    (["--size", "big"], "--size must look like 1200x800"),
])
def test_bad_options_are_one_line(qapp, checkpoint, tmp_path, args, message):
    rc, stdout, stderr = run_cli("--checkpoint", checkpoint, "--prompt", PROMPT, "--out", tmp_path / "figs", *args)
    assert rc == 2 and stdout == "" and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "figs").exists()


def test_without_the_bundled_model_it_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_EXPLORER_RESOURCES", str(tmp_path / "no resources"))
    rc, _out, stderr = run_cli("--prompt", "a", "--out", tmp_path / "figs")
    assert rc == 2 and "bundled default model is missing" in stderr


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["export", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--checkpoint", "--corpus", "--prompt", "--out", "--format", "--layer", "--head", "--position",
                "--projection", "--scale", "--width", "--keep-theme"):
        assert opt in text


def test_a_dark_window_exports_light_figures_and_stays_dark(qtbot, checkpoint, tmp_path):
    """With the app in a dark palette the panels draw dark; an export draws them on white (the
    panels restyle themselves for the light palette while they are drawn) and then puts every panel
    back as it was: dark, with the same axis numbers."""
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    import explorer
    from explorer.gui import theme
    from explorer.gui.export import export_view

    app = QApplication.instance()
    original = app.palette()
    dark = QPalette(original)
    for role, colour in ((QPalette.ColorRole.Window, theme.DARK.background), (QPalette.ColorRole.Base, "#252525"),
                         (QPalette.ColorRole.WindowText, theme.DARK.foreground),
                         (QPalette.ColorRole.Text, theme.DARK.foreground)):
        dark.setColor(role, QColor(colour))
    app.setPalette(dark)
    panels = []
    try:
        model = explorer.load(checkpoint)
        trace = model.trace(PROMPT)
        panels, _ = build_panels(model, trace, selection_for(trace, layer=1), size=SIZE, architecture=False)
        by_title = {p.title: p for p in panels}
        emb, logits = by_title["Embeddings"], by_title["Logits"]
        axes = [emb.pos_view.plot.getAxis(side) for side in ("left", "bottom")]

        def state():
            return ([ax.tickStrings([0.1, 0.2], ax.autoSIPrefixScale * ax.scale, 0.1) for ax in axes],
                    emb.theme.name, logits.linear_view.toHtml())
        before = state()
        assert before[1] == "dark"
        for p in panels:
            for view in p.export_views():
                a = pixels(export_view(view, tmp_path / f"{view.name}.png", context_for(panels, p), scale=1))
                assert tuple(a[-2, 1]) == (255, 255, 255) or view.name == "attention_text", view.name
        assert state() == before
        assert before[0][0] == ["0.1", "0.2"]  # plain numbers, no hidden SI scale
        # the worked example is drawn dark-on-white, not pale-on-white
        a = pixels(tmp_path / "lm_head_linear.png")
        assert (a.astype(int).sum(-1) < 200).mean() > 0.01
    finally:
        close_panels(panels)
        app.setPalette(original)


def test_right_clicking_a_real_plot_offers_export_for_that_view(qtbot, checkpoint):
    """A right-click through the window system on the attention heatmap opens the export menu
    titled with that view; Copy image puts that figure on the clipboard."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import explorer

    model = explorer.load(checkpoint)
    trace = model.trace(PROMPT)
    panels, _ = build_panels(model, trace, selection_for(trace, layer=1, head=1), size=SIZE, architecture=False)
    try:
        att = next(p for p in panels if p.title == "Attention")
        vp = att.heatmap.glw.viewport()
        pos = vp.mapTo(att.window(), QPoint(vp.width() // 2, vp.height() // 2))
        QTest.mouseClick(att.window().windowHandle(), Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, pos)
        qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None, timeout=3000)
        menu = QApplication.activePopupWidget()
        texts = [a.text() for a in menu.actions()]
        assert texts[0] == att.export_views()[0].title  # the view under the mouse
        QGuiApplication.clipboard().clear()
        next(a for a in menu.actions() if a.text() == "Copy image").trigger()
        menu.close()
        img = QGuiApplication.clipboard().image()
        assert not img.isNull() and img.width() == 2 * att.heatmap.glw.width()
    finally:
        close_panels(panels)


def test_the_windows_panels_make_a_figure_set_through_the_menu_wiring(make_window, model_file, qtbot, tmp_path,
                                                                       monkeypatch):
    """File → Export wired as explorer.gui.export's docstring says: the figure-set action opens the
    dialog on every panel of the window (training included), and the set it writes is complete."""
    import explorer.gui.export_menus as em
    from explorer.gui.export import install_export_menu

    w = make_window(model_file, PROMPT)
    qtbot.waitUntil(lambda: len(w.panels) >= 6, timeout=30000)
    menu = w.menuBar().addMenu("E&xport figures")
    actions = install_export_menu(menu, lambda: list(w.panels.values()), parent=w,
                                  get_source=lambda: (w.controller.model_info.source, None, None))
    results = []

    def run_dialog(parent, panels, *, source=None, corpus=None, meta=None):
        dlg = em.FigureSetDialog(parent, panels, source=source, corpus=corpus, meta=meta)
        qtbot.addWidget(dlg)
        dlg.folder_edit.setText(str(tmp_path / "window set"))
        dlg.format_checks["svg"].setChecked(False)
        results.append(dlg.export_now())
    monkeypatch.setattr(em, "export_figure_set_dialog", run_dialog)
    menu.aboutToShow.emit()
    assert actions["set"].isEnabled()
    actions["set"].trigger()
    result = results[0]
    assert not result.problems
    names = {f.name for f in result.figures}
    expected = set().union(*VIEWS.values()) | {"training_loss"}
    assert names == expected
    html = result.index.read_text(encoding="utf-8")
    assert str(model_file) in html  # the command that remakes the set names the model file
