"""The export dialogs and menus, driven like a user: Export view… (format, size, theme, file),
Copy image, Export figure set…, the File → Export actions and every panel's right-click menu."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu

from explorer.gui.export import (ExportDialog, ExportError, FigureSetDialog, context_for, install_export_menu,
                                 write_panel_data)
from explorer.gui.export_menus import build_panel_menu, export_command, install_scene_menus
from explorer.gui.export_render import layout_figure
from explorer.gui.selection import Selection
from test_export_support import BarsPanel, HeatmapPanel, TextPanel, shared_model


@pytest.fixture(scope="module")
def trace():
    return shared_model().trace("First Citizen:\nSpeak")


@pytest.fixture
def panels(qtbot, trace):
    ps = [HeatmapPanel(), BarsPanel(), TextPanel()]
    for p in ps:
        qtbot.addWidget(p)
        p.set_selection(Selection(layer=1, ln_site="blocks.1.ln1", head=1, position=3))
        p.set_trace(trace)
    return ps


def test_export_dialog_writes_the_chosen_view_format_and_size(qtbot, panels, tmp_path):
    heat, bars, _text = panels
    dlg = ExportDialog(None, panels, bars)
    qtbot.addWidget(dlg)
    assert dlg.view_box.count() == 3
    assert dlg.panel is bars and dlg.view.name == "fake_bars"
    assert dlg.path_edit.text().endswith("fake_bars.png")  # a sensible default name
    dlg.set_choice(fmt="svg")
    assert dlg.path_edit.text().endswith("fake_bars.svg") and not dlg.size_box.isEnabled()
    dlg.set_choice(fmt="png", scale=4, path=tmp_path / "für die Folien.png")
    fig = layout_figure(dlg.view, context_for(panels, bars))
    assert dlg.pixels.text() == f"{fig.width * 4} × {fig.size.height() * 4} px"
    path = dlg.export_now()
    img = QImage(str(path))
    assert path.name == "für die Folien.png" and (img.width(), img.height()) == (fig.width * 4, fig.size.height() * 4)
    dlg.set_choice(width=700)
    assert not dlg.width_spin.isHidden()
    assert QImage(str(dlg.export_now())).width() == 700
    dlg.view_box.setCurrentIndex(0)
    dlg.set_choice(fmt="pdf", path=tmp_path / "heat")
    assert dlg.export_now().read_bytes().startswith(b"%PDF") and (tmp_path / "heat.pdf").exists()


def test_export_dialog_shows_errors_and_stays_open(qtbot, panels, tmp_path):
    dlg = ExportDialog(None, panels, panels[0])
    qtbot.addWidget(dlg)
    dlg.show()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    dlg.set_choice(path=blocker / "heat.png")
    qtbot.mouseClick(dlg.export_button, Qt.MouseButton.LeftButton)
    assert "is not a folder" in dlg.error_label.text()
    assert dlg.isVisible() and dlg.written is None
    dlg.set_choice(path=tmp_path / "ok.png")
    qtbot.mouseClick(dlg.export_button, Qt.MouseButton.LeftButton)
    assert dlg.written == tmp_path / "ok.png" and dlg.written.exists() and not dlg.isVisible()


def test_copy_button_puts_the_view_on_the_clipboard(qtbot, panels):
    QGuiApplication.clipboard().clear()
    dlg = ExportDialog(None, panels, panels[2])
    qtbot.addWidget(dlg)
    dlg.set_choice(scale=1)
    dlg._on_copy()
    fig = layout_figure(panels[2].export_views()[0], context_for(panels, panels[2]))
    img = QGuiApplication.clipboard().image()
    assert (img.width(), img.height()) == (fig.width, fig.size.height())


def test_dialog_with_nothing_to_export_says_so(qtbot):
    empty = type("Empty", (TextPanel,), {"export_views": lambda self: []})()
    qtbot.addWidget(empty)
    with pytest.raises(ExportError, match="no view to export"):
        ExportDialog(None, [empty], None)


def test_figure_set_dialog_exports_into_the_chosen_folder(qtbot, panels, tmp_path):
    dlg = FigureSetDialog(None, panels, source=str(tmp_path / "model.safetensors"))
    qtbot.addWidget(dlg)
    assert Path(dlg.folder_edit.text()).name.startswith("tiny_First_Citizen")
    dlg.folder_edit.setText(str(tmp_path / "Set für Folien"))
    dlg.format_checks["pdf"].setChecked(True)
    dlg.size_box.setCurrentIndex(0)
    steps = []
    result = dlg.export_now(lambda d, t, w: steps.append(d) or True)
    assert steps == sorted(steps) and len(steps) == 3 * 3 + 4 + 1 + 1
    names = {p.name for p in result.files}
    assert {"fake_heatmap.png", "fake_heatmap.svg", "fake_heatmap.pdf", "index.html", "trace.npz"} <= names
    html = result.index.read_text(encoding="utf-8")
    assert "--checkpoint" in html and "--head 1" in html and "--position 3" in html and "--layer 1" in html


def test_export_command_is_a_valid_shell_line(trace):
    from explorer.gui.export import FigureContext
    import shlex

    ctx = FigureContext.from_trace(trace, Selection(layer=2, ln_site="ln_final", head=1, position=None),
                                   projection="t-SNE")
    cmd = export_command(source="/models/my model.safetensors", context=ctx, out="out dir", formats=["png", "svg"],
                         scale=2.0, width=None, keep_theme=True)
    args = shlex.split(cmd)
    assert args[:4] == ["python", "-m", "explorer", "export"]
    assert args[args.index("--checkpoint") + 1] == "/models/my model.safetensors"
    assert args[args.index("--prompt") + 1] == "First Citizen:\nSpeak"
    assert args[args.index("--projection") + 1] == "tsne" and "--keep-theme" in args and "--position" not in args
    assert export_command(source=None, context=ctx, out="x", formats=["png"], scale=2, width=None,
                          keep_theme=False) is None


def test_file_menu_actions(qtbot, panels, tmp_path, monkeypatch):
    win = QMainWindow()
    qtbot.addWidget(win)
    menu = win.menuBar().addMenu("&File").addMenu("&Export")
    shown = {"panels": []}
    actions = install_export_menu(menu, lambda: shown["panels"], parent=win, get_current=lambda: panels[1])
    assert [a.shortcut().toString() for a in actions.values()][:3] == ["Ctrl+E", "Ctrl+Shift+C", "Ctrl+Shift+E"]
    menu.aboutToShow.emit()
    assert not any(a.isEnabled() for a in actions.values())  # nothing to export before a trace
    shown["panels"] = panels
    menu.aboutToShow.emit()
    assert all(a.isEnabled() for a in actions.values())
    QGuiApplication.clipboard().clear()
    actions["copy"].trigger()
    fig = layout_figure(panels[1].export_views()[0], context_for(panels, panels[1]))
    assert QGuiApplication.clipboard().image().width() == 2 * fig.width  # 2x by default
    assert "Copied" in win.statusBar().currentMessage()
    # Export view… opens the dialog on the current panel
    import explorer.gui.export_menus as em

    opened = {}
    monkeypatch.setattr(em, "export_dialog", lambda parent, ps, panel, view=None: opened.update(panel=panel, n=len(ps)))
    actions["view"].trigger()
    assert opened == {"panel": panels[1], "n": 3}


def test_panel_right_click_menu(qtbot, panels, monkeypatch):
    heat = panels[0]
    menu = build_panel_menu(heat, heat.glw.viewport())
    assert isinstance(menu, QMenu)
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts == ["Export view…", "Copy image", "Export data (CSV/NPZ)…"]
    assert any(a.isSeparator() and a.text().startswith("Fake pattern") for a in menu.actions())
    fresh = HeatmapPanel()
    qtbot.addWidget(fresh)
    assert build_panel_menu(fresh) is None  # no trace yet: no menu
    # a right-click pops it up at the mouse
    heat.show()
    qtbot.waitExposed(heat)
    ev = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(5, 5), heat.mapToGlobal(QPoint(5, 5)))
    QApplication.sendEvent(heat.glw.viewport(), ev)
    popup = QApplication.activePopupWidget()
    assert isinstance(popup, QMenu) and "Copy image" in [a.text() for a in popup.actions()]
    popup.close()


def test_plots_get_our_export_entries_instead_of_pyqtgraphs(qtbot, panels):
    heat = panels[0]
    heat.show()  # Panel.showEvent installs them
    qtbot.waitExposed(heat)
    scene = heat.glw.scene()
    assert [a.text() for a in scene.contextMenu] == ["Export view…", "Copy image"]
    assert install_scene_menus(heat) == 0  # once per scene
    QGuiApplication.clipboard().clear()
    scene.contextMenu[1].trigger()
    assert not QGuiApplication.clipboard().image().isNull()


def test_write_panel_data(panels, tmp_path):
    paths = write_panel_data(panels[1], tmp_path)
    assert [p.name for p in paths] == ["fake_topk.csv"]
    assert paths[0].read_text(encoding="utf-8").splitlines()[0] == "rank,char,prob"
    npz = write_panel_data(panels[0], tmp_path)[0]
    with np.load(npz) as z:
        np.testing.assert_allclose(z["pattern"].sum(1), 1.0, atol=1e-6)
    with pytest.raises(ExportError, match="no data to export"):
        write_panel_data(panels[2], tmp_path)
