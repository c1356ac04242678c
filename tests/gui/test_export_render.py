"""Rendering single views: PNG size and content at each scale, SVG as real vectors, one-page PDF,
the temporary white theme (and that the GUI is put back), headers, text views, clipboard, errors."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtWidgets import QTextBrowser

from explorer.gui import theme
from explorer.gui.export import ExportError, FigureContext, export_view, render_image, render_pdf, render_svg
from explorer.gui.export_render import HEADER_PAD, _fonts, _metrics, layout_figure, short_prompt
from explorer.gui.panels.base import ExportView
from test_export_support import BarsPanel, HeatmapPanel, TextPanel, shared_model

PROMPT = "First Citizen:\nSpeak, speak."


@pytest.fixture(scope="module")
def trace():
    return shared_model().trace(PROMPT)


@pytest.fixture
def panels(qtbot, trace):
    ps = [HeatmapPanel(dark=True), BarsPanel(), TextPanel()]
    for p in ps:
        qtbot.addWidget(p)
        p.set_trace(trace)
    return ps


@pytest.fixture(scope="module")
def ctx(trace):
    return FigureContext.from_trace(trace)


def pixels(img: QImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a QImage."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    a = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return a[:, : w * 3].reshape(h, w, 3).copy()


def distinct_colours(a: np.ndarray) -> int:
    rgb = a.reshape(-1, 3).astype(np.uint32)
    return len(np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]))


def heatmap_rect(panel: HeatmapPanel, fig, scale: float) -> tuple[int, int, int, int]:
    """Where the panel's ImageItem lands in the exported PNG: (x0, y0, x1, y1) in image pixels."""
    r = panel.image.sceneBoundingRect()
    tl = panel.glw.mapFromScene(r.topLeft())
    br = panel.glw.mapFromScene(r.bottomRight())
    return (int(tl.x() * scale) + 4, int((tl.y() + fig.header) * scale) + 4,
            int(br.x() * scale) - 4, int((br.y() + fig.header) * scale) - 4)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_png_size_follows_scale_and_is_not_blank(panels, ctx, scale):
    heat = panels[0]
    view = heat.export_views()[0]
    fig = layout_figure(view, ctx)
    img = render_image(view, ctx, scale=scale)
    assert (img.width(), img.height()) == (fig.width * scale, fig.size.height() * scale)
    a = pixels(img)
    assert distinct_colours(a[::scale, ::scale]) > 60
    # the heatmap region is coloured (cividis), unlike the white background
    x0, y0, x1, y1 = heatmap_rect(heat, fig, scale)
    region = a[y0:y1, x0:x1].astype(int)
    assert region.size and np.abs(region - 255).sum(-1).mean() > 100
    assert distinct_colours(region) > 10
    assert tuple(a[-2, -2]) == (255, 255, 255)  # white background by default, even on a dark panel
    # the file records the scale in its resolution, so a 2x image pastes at its on-screen size
    assert img.dotsPerMeterX() == pytest.approx(heat.glw.logicalDpiX() * scale / 0.0254, rel=0.01)


def test_png_at_a_pixel_width(panels, ctx):
    view = panels[1].export_views()[0]
    fig = layout_figure(view, ctx)
    img = render_image(view, ctx, width=1000)
    assert img.width() == 1000
    assert img.height() == round(fig.size.height() * 1000 / fig.width)
    with pytest.raises(ExportError, match="at least 16"):
        render_image(view, ctx, width=3)
    with pytest.raises(ExportError, match="too large"):
        render_image(view, ctx, scale=100)


def ink_rows(a: np.ndarray, y0: int, y1: int, x0: int = 0, x1: int | None = None) -> int:
    """Number of rows between y0 and y1 holding dark (text) pixels."""
    dark = (a[y0:y1, x0:x1].astype(int).sum(-1) < 300).any(1)
    idx = np.flatnonzero(dark)
    return int(idx[-1] - idx[0] + 1) if idx.size else 0


def test_text_is_drawn_larger_at_2x_not_upscaled(panels, ctx):
    """Header and axis labels are drawn at twice their size at 2x (crisp, not upscaled), and the
    header title's letters are at least as tall as the GUI's axis labels."""
    bars = panels[1]
    view = bars.export_views()[0]
    fig = layout_figure(view, ctx)
    one, two = pixels(render_image(view, ctx, scale=1)), pixels(render_image(view, ctx, scale=2))
    title_font, _ = _fonts()
    title_bottom = HEADER_PAD + len(fig.title_lines) * _metrics(title_font, fig.dpi).height()
    h1 = ink_rows(one, 0, title_bottom)
    h2 = ink_rows(two, 0, 2 * title_bottom)
    assert h1 > 10 and h2 == pytest.approx(2 * h1, rel=0.12)
    # the bottom axis strip holds only the tick labels (w, d, k, y, f: ascenders and a descender)
    ax = bars.plotw.getPlotItem().getAxis("bottom")
    r = ax.sceneBoundingRect()
    top = bars.plotw.mapTo(bars.box, bars.plotw.mapFromScene(r.topLeft())).y() + fig.header
    bottom = bars.plotw.mapTo(bars.box, bars.plotw.mapFromScene(r.bottomLeft())).y() + fig.header
    t1 = ink_rows(one, top + 2, bottom)
    t2 = ink_rows(two, 2 * top + 4, 2 * bottom)
    assert t1 > 6 and t2 == pytest.approx(2 * t1, rel=0.2)
    assert h1 >= t1  # the title ("Fake top-5 · position last": ascenders and a descender too)


def test_theme_is_restored_after_export(panels, ctx):
    heat = panels[0]
    axis = heat.plot.getAxis("left")
    before = (heat.glw.backgroundBrush().color().name(), axis.pen().color().name(), axis.textPen().color().name(),
              heat.plot.titleLabel.opts.get("color"), heat.number.color.name(), heat.glw.cacheMode())
    assert before[0] == theme.DARK.background.lower()
    render_image(heat.export_views()[0], ctx, scale=1)
    render_svg(heat.export_views()[0], ctx)
    after = (heat.glw.backgroundBrush().color().name(), axis.pen().color().name(), axis.textPen().color().name(),
             heat.plot.titleLabel.opts.get("color"), heat.number.color.name(), heat.glw.cacheMode())
    assert after == before


def test_keep_theme_keeps_the_dark_background(panels, ctx):
    view = panels[0].export_views()[0]
    a = pixels(render_image(view, ctx, scale=1, keep_theme=True))
    assert tuple(a[-2, -2]) == tuple(QColor(theme.DARK.background).getRgb()[:3])
    assert tuple(a[2, 2]) == tuple(QColor(theme.DARK.background).getRgb()[:3])  # header too


def test_header_says_model_prompt_and_view(panels, ctx, trace):
    img = render_image(panels[0].export_views()[0], ctx, scale=1)
    assert img.text("Title") == "Fake pattern · head 0"
    desc = img.text("Description")
    assert "Model tiny" in desc and "First␣Citizen:⏎Speak,␣speak." in desc and f"({trace.T} characters)" in desc


def test_short_prompt_keeps_both_ends_and_shows_whitespace():
    long = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer"
    s = short_prompt(long, limit=40)
    assert len(s) == 40 and "…" in s
    assert s.startswith("To␣be,") and s.endswith("to␣suffer")
    assert short_prompt("a b\n") == "a␣b⏎"


def svg_tree(data: bytes):
    root = ET.fromstring(data)
    tags = [el.tag.rsplit("}", 1)[-1] for el in root.iter()]
    return root, tags


def max_stroke_on_page(root) -> float:
    """The widest stroke of the drawing, in page units (stroke width times its group's scale)."""
    widest = 0.0
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        m = re.search(r"matrix\(([^)]*)\)", g.get("transform", ""))
        a, b, c, d = (float(v) for v in m.group(1).split(",")[:4]) if m else (1, 0, 0, 1)
        scale = abs(a * d - b * c) ** 0.5
        stroke = g.get("stroke", "none")
        for el in g:
            if el.get("stroke", stroke) != "none" and el.tag.rsplit("}", 1)[-1] in ("path", "rect", "polyline",
                                                                                   "polygon", "ellipse", "line"):
                widest = max(widest, float(el.get("stroke-width", g.get("stroke-width", "1"))) * scale)
    return widest


def test_svg_is_a_real_vector_drawing(panels, ctx):
    heat, bars, text = panels
    data = render_svg(heat.export_views()[0], ctx)
    root, tags = svg_tree(data)
    fig = layout_figure(heat.export_views()[0], ctx)
    assert root.get("viewBox") == f"0 0 {fig.width} {fig.size.height()}"
    assert tags.count("image") >= 1  # the heatmap, embedded
    assert tags.count("text") >= 20  # tick labels, axis labels, header: text, not pixels
    assert tags.count("path") + tags.count("polyline") + tags.count("rect") >= 5
    # the heatmap's image was enlarged (nearest-neighbour) so viewers do not blur its cells
    widths = [QImage.fromData(base64.b64decode(b), "PNG").width()
              for b in re.findall(rb'data:image/png;base64,([A-Za-z0-9+/=]+)', data)]
    assert max(widths) >= 512
    # bars are vector shapes filled with the series colour
    data = render_svg(bars.export_views()[0], ctx)
    assert f'fill="{theme.SERIES[0].lower()}"'.encode() in data
    _root, tags = svg_tree(data)
    assert "image" not in tags  # no bitmap at all: bars, axes, symbols and text are vectors
    # cosmetic lines are baked into page units: no viewer draws them 20-1000x too wide
    assert b"non-scaling-stroke" not in data
    assert max_stroke_on_page(ET.fromstring(data)) <= 6
    # a plain text widget is text in the SVG too
    _root, tags = svg_tree(render_svg(text.export_views()[0], ctx))
    assert tags.count("text") >= 5


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def test_pdf_is_one_page_of_the_figure_size(panels, ctx, tmp_path):
    view = panels[0].export_views()[0]
    data = render_pdf(view, ctx)
    assert data.startswith(b"%PDF")
    assert pdf_pages(data) == 1
    assert b"DCTDecode" not in data  # the heatmap is stored losslessly, no JPEG artefacts
    fig = layout_figure(view, ctx)
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", data)
    w_pt, h_pt = float(box.group(3)), float(box.group(4))
    dpi = fig.dpi
    assert w_pt == pytest.approx(fig.width * 72 / dpi, abs=1) and h_pt == pytest.approx(fig.size.height() * 72 / dpi, abs=1)
    if shutil.which("pdftoppm"):  # and it is not an empty page
        pdf = tmp_path / "f.pdf"
        pdf.write_bytes(data)
        subprocess.run(["pdftoppm", "-png", "-r", "72", "-singlefile", str(pdf), str(tmp_path / "page")], check=True)
        a = pixels(QImage(str(tmp_path / "page.png")))
        assert distinct_colours(a) > 30


def test_text_view_exports_its_whole_document(qtbot, ctx):
    tb = QTextBrowser()
    qtbot.addWidget(tb)
    tb.resize(300, 120)
    tb.setHtml("<p>" + "<br>".join(f"line {i}: x · W[{i}] + b" for i in range(40)) + "</p>")
    view = ExportView("linear", tb, "A long worked example")
    fig = layout_figure(view, ctx)
    assert fig.width >= 480  # re-flowed wider than the narrow view
    assert fig.body > 40 * 12  # every line, not just the 120 px the view shows
    a = pixels(render_image(view, ctx, scale=1))
    assert ink_rows(a, fig.header, a.shape[0]) > 40 * 10


def test_copy_image_puts_the_figure_on_the_clipboard(panels, ctx):
    from explorer.gui.export import copy_image

    img = copy_image(panels[1].export_views()[0], ctx, scale=2)
    got = QGuiApplication.clipboard().image()
    assert not got.isNull() and (got.width(), got.height()) == (img.width(), img.height())


def test_export_view_writes_files_and_reports_bad_paths(panels, ctx, tmp_path):
    view = panels[1].export_views()[0]
    for ext, magic in (("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")):
        p = export_view(view, tmp_path / f"bars é.{ext}", ctx)
        assert p.read_bytes().startswith(magic)
    with pytest.raises(ExportError, match="use a .png, .svg or .pdf"):
        export_view(view, tmp_path / "bars.jpg", ctx)
    with pytest.raises(ExportError, match="does not exist"):
        export_view(view, tmp_path / "missing" / "bars.png", ctx)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="is not a folder"):
        export_view(view, blocker / "bars.png", ctx)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "settings") == [
        "a_file", "bars é.pdf", "bars é.png", "bars é.svg"]


def test_scatter_symbols_are_vectors_in_svg(panels, ctx):
    """pyqtgraph draws scatter symbols from a bitmap cache on screen; exports draw them as paths."""
    data = render_svg(panels[1].export_views()[0], ctx)
    assert data.count(theme.SERIES[2].lower().encode()) >= 5  # the five green symbols, filled paths
    assert panels[1].curve.scatter._exportOpts is False  # and export mode was switched off again


def test_a_view_without_widget_is_an_error(ctx):
    with pytest.raises(ExportError, match="nothing to render"):
        render_image(ExportView("none", None, "nothing"), ctx)
    with pytest.raises(ExportError, match="QWidget or a QGraphicsItem"):
        render_image(ExportView("odd", object(), "odd"), ctx)


def test_graphics_item_views_render_their_scene_rect(panels, ctx):
    heat = panels[0]
    view = ExportView("plot_only", heat.plot, "Just the plot item")
    fig = layout_figure(view, ctx)
    r = heat.plot.sceneBoundingRect()
    assert (fig.width, fig.body) == (round(r.width()), round(r.height()))
    a = pixels(render_image(view, ctx, scale=1))
    assert distinct_colours(a) > 30
    assert heat.glw.backgroundBrush().color().name() == theme.DARK.background.lower()
