"""Rendering one view to a self-explaining figure: PNG (at a scale or a pixel width), SVG, PDF.

A figure is the view's widget (or QGraphicsItem) as the GUI shows it, under a header that says
what it is::

    ┌──────────────────────────────────────────────────────────────┐
    │ Attention weights · block 1 · head 0 · query position 5      │  title (the view's, bold)
    │ Model shakespeare · prompt “ROMEO:⏎But␣soft” (12 characters) │  context (model, prompt)
    ├──────────────────────────────────────────────────────────────┤
    │                the widget, rendered by Qt                    │
    └──────────────────────────────────────────────────────────────┘

Everything is painted through one ``QPainter`` path, so the three formats show the same figure:

* PNG: a ``QImage`` with the painter scaled by s (1x, 2x, 4x, or width / logical width), so text
  and lines are drawn at the higher resolution rather than upscaled; the file records s·dpi so a
  2x image drops into a slide at the size it had on screen;
* SVG: ``QSvgGenerator`` (real vector paths and text; a heatmap stays an embedded image), then
  ``export_svg.clean_svg`` so every viewer draws it alike (cosmetic line widths baked in, small
  images enlarged so their cells stay sharp). pyqtgraph's own ``SVGExporter`` is not used: it
  raises on plots that hold an ``ImageItem``;
* PDF: ``QPdfWriter``, one page exactly the figure's size, images embedded losslessly.

Units: one logical pixel of the widget is one unit of the SVG and PDF (their resolution is the
widget's logical DPI), so fonts keep the size they have on screen.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from PySide6.QtCore import (QBuffer, QByteArray, QCoreApplication, QEvent, QIODevice, QMarginsF, QPoint,
                            QRect, QRectF, QSize, QSizeF, Qt)
from PySide6.QtGui import (QAbstractTextDocumentLayout, QColor, QFont, QFontMetrics, QGuiApplication, QImage,
                           QPageLayout, QPageSize, QPainter, QPalette, QPdfWriter, QTextCharFormat, QTextCursor,
                           QTextDocument, QTextFormat)
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem, QTextEdit, QWidget

from ..core.tokenizer import display_char
from . import theme
from .export_svg import clean_svg
from .export_style import (export_look, graphics_views, light_palette, luminance, readable_on_white,
                           view_background)
from .selection import EMBED, Selection

SCALES = (1.0, 2.0, 4.0)
DEFAULT_SCALE = 2.0
MAX_PIXELS = 16384  # largest PNG side we write (QImage and most viewers cope with this)
PROMPT_LIMIT = 60  # visible characters of the prompt in a header before it is shortened
HEADER_PAD = 8
TITLE_LINES, SUBTITLE_LINES = 3, 2  # a narrow figure wraps its header onto at most this many lines
TEXT_MIN_WIDTH = 480  # a text view narrower than this is re-flowed to this width in its figure
TEXT_PAD = 6
FIGURE_FORMATS = ("png", "svg", "pdf")


class ExportError(Exception):
    """An export could not be written. The message is one line, fit to show to the user."""


@dataclass(frozen=True)
class FigureContext:
    """What a figure's header and a figure set's index say about the trace being shown."""

    model_name: str = ""
    prompt: str = ""
    n_tokens: int = 0
    settings: tuple[tuple[str, str], ...] = ()  # ordered (name, value), e.g. ("head", "1")
    notes: tuple[str, ...] = ()  # e.g. "3 characters not in the vocabulary were left out"
    model_summary: str = ""  # "lecture · 2 layers · 2 heads · 32 dims · block 32 · vocab 40"
    info: dict[str, Any] = field(default_factory=dict, compare=False)  # JSON-able extras (figures.json)

    @classmethod
    def from_trace(cls, trace, selection: Selection | None = None, *, projection: str | None = None,
                   extra: dict[str, str] | None = None) -> "FigureContext":
        sel = selection or Selection()
        T, L = trace.T, trace.n_layer
        settings: list[tuple[str, str]] = [("layer", layer_label(sel.layer, L))]
        settings.append(("LayerNorm", sel.ln_site))
        settings.append(("head", str(max(0, min(sel.head, trace.config.n_head - 1)))))
        q = sel.resolved_position(T)
        if q is None:
            settings.append(("position", "none (empty prompt)"))
        else:
            follow = " (the last)" if sel.position is None else ""
            settings.append(("position", f"{q} ‘{display_char(trace.tokens[q])}’{follow}"))
        if projection:
            settings.append(("projection", projection))
        for k, v in (extra or {}).items():
            settings.append((k, str(v)))
        notes = []
        if trace.cropped:
            notes.append(f"the first {trace.cropped} characters were cropped to fit block_size "
                         f"{trace.config.block_size}")
        if trace.unknown:
            chars = "".join(sorted({display_char(c) for _, c in trace.unknown}))
            notes.append(f"{len(trace.unknown)} character(s) not in the vocabulary were left out: {chars}")
        c = trace.config
        summary = (f"{c.family} · {c.n_layer} layers · {c.n_head} heads · {c.n_embd} dims · "
                   f"block {c.block_size} · vocab {c.vocab_size}")
        info = {"layer": sel.layer, "ln_site": sel.ln_site, "head": sel.head, "position": sel.position,
                "resolved_position": q, "projection": projection, "config": c.to_dict()}
        return cls(trace.model_name, trace.text, T, tuple(settings), tuple(notes), summary, info)

    def subtitle(self) -> str:
        if not self.model_name and not self.prompt:
            return ""
        prompt = short_prompt(self.prompt)
        n = f" ({self.n_tokens} characters)" if self.n_tokens else ""
        model = f"Model {self.model_name} · " if self.model_name else ""
        return f"{model}prompt “{prompt}”{n}"

    def settings_text(self) -> str:
        return " · ".join(f"{k} {v}" for k, v in self.settings)


def layer_label(layer: int, n_layer: int) -> str:
    if layer <= EMBED:
        return "embeddings"
    if layer >= n_layer:
        return "ln_f / lm_head"
    return f"block {layer}"


def visible(text: str) -> str:
    """``text`` with whitespace and invisible characters shown (⏎, ␣, ⇥)."""
    return "".join(display_char(ch) for ch in text)


def short_prompt(text: str, limit: int = PROMPT_LIMIT) -> str:
    """The prompt with visible whitespace, shortened in the middle (keeping more of the end, where
    the prediction is made) when it has more than ``limit`` characters."""
    shown = [display_char(ch) for ch in text]
    if len(shown) <= limit:
        return "".join(shown)
    head = limit // 3
    tail = limit - head - 1
    return "".join(shown[:head]) + "…" + "".join(shown[-tail:])


# ---------------------------------------------------------------------------------------------
# layout of a figure
# ---------------------------------------------------------------------------------------------
def _fonts() -> tuple[QFont, QFont]:
    title = QFont(QGuiApplication.font())
    title.setPointSizeF(theme.TITLE_PT)
    title.setBold(True)
    sub = QFont(QGuiApplication.font())
    sub.setPointSizeF(theme.FONT_PT)
    return title, sub


def _metrics(font: QFont, dpi: int) -> QFontMetrics:
    # QFontMetrics for a paint device of the given DPI (fonts are in points)
    img = QImage(1, 1, QImage.Format.Format_ARGB32)
    dpm = round(dpi / 0.0254)
    img.setDotsPerMeterX(dpm)
    img.setDotsPerMeterY(dpm)
    return QFontMetrics(font, img)


def _dpi(root) -> int:
    if isinstance(root, QWidget):
        return max(1, root.logicalDpiY())
    views = graphics_views(root)
    return max(1, views[0].logicalDpiY()) if views else 96


def _ensure_laid_out(root) -> None:
    """Make sure ``root`` has its final geometry before it is painted: deliver pending layout
    requests, and give a widget that was never shown (a tab not yet opened) a usable size."""
    if isinstance(root, QWidget) and not root.isVisible():
        if root.width() < 160 or root.height() < 120:
            hint = root.sizeHint()
            root.resize(max(hint.width(), 900), max(hint.height(), 600))
        # Qt sends a hidden widget its pending resize events when it is rendered; do that once
        # into a throwaway image so the layouts below it run before the real paint
        scratch = QImage(1, 1, QImage.Format.Format_ARGB32)
        p = QPainter(scratch)
        try:
            QWidget.render(root, p, QPoint(0, 0))
        finally:
            p.end()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)


def _root_size(root) -> QSize:
    if isinstance(root, QGraphicsItem):
        r = root.sceneBoundingRect()
        return QSize(max(1, round(r.width())), max(1, round(r.height())))
    if not isinstance(root, QWidget):
        raise ExportError(f"cannot render a {type(root).__name__}: an export view must be a QWidget or a "
                          "QGraphicsItem")
    return QSize(max(1, root.width()), max(1, root.height()))


@dataclass
class Figure:
    """A view ready to paint: its logical size and header height, colours, resolution."""

    view: Any  # ExportView
    context: FigureContext
    width: int
    header: int
    body: int
    dpi: int
    background: QColor
    foreground: QColor
    light: bool
    title_lines: list[str] = field(default_factory=list)
    subtitle_lines: list[str] = field(default_factory=list)
    document: QTextDocument | None = None  # a text view is drawn from its whole document

    @property
    def size(self) -> QSize:
        return QSize(self.width, self.header + self.body)


def _wrap(text: str, fm: QFontMetrics, width: int, max_lines: int) -> list[str]:
    """``text`` broken into lines at most ``width`` wide (words kept whole where possible); the
    last allowed line is elided."""
    lines: list[str] = []
    rest = text.strip()
    while rest and len(lines) < max_lines:
        if fm.horizontalAdvance(rest) <= width or len(lines) == max_lines - 1:
            lines.append(fm.elidedText(rest, Qt.TextElideMode.ElideRight, width))
            break
        cut = len(rest)
        while cut > 1 and fm.horizontalAdvance(rest[:cut]) > width:
            cut -= 1
        space = rest.rfind(" ", 0, cut + 1)
        if space > cut // 3:
            cut = space
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines


def _text_document(root: QTextEdit, light: bool) -> QTextDocument:
    """The text view's document laid out for the figure: all of it (no scroll bars), re-flowed to
    ``TEXT_MIN_WIDTH`` when the view is narrower; on white, with any text too pale for white (a
    colour written into the HTML for a dark theme) turned dark."""
    doc = root.document()
    width = root.viewport().width()
    if width >= TEXT_MIN_WIDTH and not light:
        return doc
    doc = doc.clone()  # owned by the Figure, so the view's own document is left alone
    doc.setDefaultFont(root.document().defaultFont())
    doc.setTextWidth(max(width, TEXT_MIN_WIDTH))
    if light:
        _darken_pale_text(doc)
    return doc


def _darken_pale_text(doc: QTextDocument) -> None:
    cursor = QTextCursor(doc)
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            fmt = frag.charFormat()
            colour = fmt.foreground().color() if fmt.hasProperty(QTextFormat.Property.ForegroundBrush) else None
            back = fmt.background()
            dark_back = (back.style() != Qt.BrushStyle.NoBrush and back.color().alpha() > 128
                         and luminance(back.color()) < 0.4)
            if colour is not None and not dark_back and readable_on_white(colour) != colour:
                new = QTextCharFormat()
                new.setForeground(readable_on_white(colour))
                cursor.setPosition(frag.position())
                cursor.setPosition(frag.position() + frag.length(), QTextCursor.MoveMode.KeepAnchor)
                cursor.mergeCharFormat(new)
            it += 1
        block = block.next()


def layout_figure(view, context: FigureContext | None = None, *, keep_theme: bool = False) -> Figure:
    """Measure a view: the logical size of its figure (header + widget) and its colours."""
    if view.widget is None:
        raise ExportError(f"view {view.name!r} has nothing to render")
    _ensure_laid_out(view.widget)
    ctx = context or FigureContext()
    size = _root_size(view.widget)
    dpi = _dpi(view.widget)
    document = None
    if isinstance(view.widget, QTextEdit):
        document = _text_document(view.widget, light=not keep_theme)
        size = QSize(max(size.width(), math.ceil(document.textWidth()) + 2 * TEXT_PAD),
                     math.ceil(document.size().height()) + 2 * TEXT_PAD)
    title_font, sub_font = _fonts()
    tm, sm = _metrics(title_font, dpi), _metrics(sub_font, dpi)
    text_w = size.width() - 2 * (HEADER_PAD + 2)
    titles = _wrap(view.title or view.name, tm, text_w, TITLE_LINES)
    subtitles = _wrap(ctx.subtitle(), sm, text_w, SUBTITLE_LINES) if ctx.subtitle() else []
    header = HEADER_PAD + len(titles) * tm.height()
    if subtitles:
        header += 2 + len(subtitles) * sm.height()
    header += HEADER_PAD
    if keep_theme:
        bg = view_background(view.widget)
        fg = QColor(theme.DARK.foreground if luminance(bg) < 0.5 else theme.LIGHT.foreground)
    else:
        bg, fg = QColor(theme.LIGHT.background), QColor(theme.LIGHT.foreground)
    return Figure(view, ctx, size.width(), header, size.height(), dpi, bg, fg, not keep_theme,
                  titles, subtitles, document)


def _paint_header(p: QPainter, fig: Figure) -> None:
    title_font, sub_font = _fonts()
    x, w = HEADER_PAD + 2, fig.width - 2 * (HEADER_PAD + 2)
    flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    p.setFont(title_font)
    p.setPen(fig.foreground)
    fm = QFontMetrics(p.font(), p.device())
    y = HEADER_PAD
    for line in fig.title_lines:
        p.drawText(QRect(x, y, w, fm.height()), flags, line)
        y += fm.height()
    if fig.subtitle_lines:
        y += 2
        p.setFont(sub_font)
        muted = QColor(fig.foreground)
        muted.setAlphaF(0.8)
        p.setPen(muted)
        fm = QFontMetrics(p.font(), p.device())
        for line in fig.subtitle_lines:
            p.drawText(QRect(x, y, w, fm.height()), flags, line)
            y += fm.height()
    rule = QColor(fig.foreground)
    rule.setAlphaF(0.25)
    p.setPen(rule)
    p.drawLine(x, fig.header - 2, x + w, fig.header - 2)


def _paint_document(p: QPainter, fig: Figure) -> None:
    root = fig.view.widget
    pal = light_palette() if fig.light else QPalette(root.palette())
    p.fillRect(QRect(0, fig.header, fig.width, fig.body), pal.color(QPalette.ColorRole.Base))
    ctx = QAbstractTextDocumentLayout.PaintContext()
    ctx.palette = pal
    p.save()
    p.translate(TEXT_PAD, fig.header + TEXT_PAD)
    fig.document.documentLayout().draw(p, ctx)
    p.restore()


@contextmanager
def drawing(view, context: FigureContext | None = None, *, keep_theme: bool = False,
            line_scale: float = 1.0) -> Iterator[Figure]:
    """The view in its export look (see ``export_style``), measured: paint it inside the block."""
    if view.widget is None:
        raise ExportError(f"view {view.name!r} has nothing to render")
    if not isinstance(view.widget, (QWidget, QGraphicsItem)):
        _root_size(view.widget)  # raises the one-line error
    with export_look(view.widget, light=not keep_theme, line_scale=line_scale):
        yield layout_figure(view, context, keep_theme=keep_theme)


def paint_figure(p: QPainter, fig: Figure) -> None:
    """Paint ``fig`` with ``p`` in logical units, inside ``drawing()`` (the caller sets any scale)."""
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    p.setRenderHint(QPainter.RenderHint.LosslessImageRendering, True)
    p.fillRect(QRect(QPoint(0, 0), fig.size), fig.background)
    _paint_header(p, fig)
    root = fig.view.widget
    if fig.document is not None:
        _paint_document(p, fig)
    elif isinstance(root, QGraphicsItem):
        scene = root.scene()
        if scene is not None:
            scene.render(p, QRectF(0, fig.header, fig.width, fig.body), root.sceneBoundingRect())
    else:
        flags = QWidget.RenderFlag.DrawChildren
        if fig.light or root.autoFillBackground():
            flags |= QWidget.RenderFlag.DrawWindowBackground
        QWidget.render(root, p, QPoint(0, fig.header), renderFlags=flags)


# ---------------------------------------------------------------------------------------------
# the three formats
# ---------------------------------------------------------------------------------------------
def raster_scale(fig: Figure, scale: float | None = None, width: int | None = None) -> float:
    """The scale for a PNG of ``fig``: ``width / logical width`` when a width is given."""
    if width is not None:
        if int(width) < 16:
            raise ExportError(f"a PNG must be at least 16 pixels wide, not {width}")
        s = int(width) / fig.width
    else:
        s = DEFAULT_SCALE if scale is None else float(scale)
    if not s > 0:
        raise ExportError(f"the scale must be positive, not {scale}")
    if max(fig.width, fig.size.height()) * s > MAX_PIXELS:
        raise ExportError(f"{round(fig.width * s)} × {round(fig.size.height() * s)} pixels is too large "
                          f"(at most {MAX_PIXELS} on a side); use a smaller scale or width")
    return s


def render_image(view, context: FigureContext | None = None, *, scale: float | None = DEFAULT_SCALE,
                 width: int | None = None, keep_theme: bool = False) -> QImage:
    """The figure as a ``QImage`` at ``scale`` (or exactly ``width`` pixels wide)."""
    s = raster_scale(layout_figure(view, context, keep_theme=keep_theme), scale, width)
    with drawing(view, context, keep_theme=keep_theme, line_scale=s) as fig:
        s = raster_scale(fig, scale, width)
        w = int(width) if width is not None else max(1, round(fig.width * s))
        h = max(1, round(fig.size.height() * s))
        img = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
        dpm = round(fig.dpi / 0.0254)
        img.setDotsPerMeterX(dpm)  # fonts in points map to the same pixels as on screen
        img.setDotsPerMeterY(dpm)
        img.fill(fig.background)
        p = QPainter(img)
        try:
            p.scale(w / fig.width, h / fig.size.height())
            paint_figure(p, fig)
        finally:
            p.end()
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    dpm = round(fig.dpi * s / 0.0254)  # recorded so a 2x image inserts at its on-screen size
    img.setDotsPerMeterX(dpm)
    img.setDotsPerMeterY(dpm)
    img.setText("Title", view.title or view.name)
    if fig.context.subtitle():
        img.setText("Description", fig.context.subtitle())
    img.setText("Software", "GPT Explorer")
    return img


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    ok = image.save(buf, "PNG")
    buf.close()
    if not ok:
        raise ExportError("Qt could not encode the PNG image")
    return bytes(data)


def render_png(view, context: FigureContext | None = None, *, scale: float | None = DEFAULT_SCALE,
               width: int | None = None, keep_theme: bool = False) -> bytes:
    return png_bytes(render_image(view, context, scale=scale, width=width, keep_theme=keep_theme))


def render_svg(view, context: FigureContext | None = None, *, keep_theme: bool = False) -> bytes:
    """The figure as an SVG document (vector paths and text; heatmaps as embedded images)."""
    with drawing(view, context, keep_theme=keep_theme) as fig:
        data = _svg(fig)
    return clean_svg(data)


def _svg(fig: Figure) -> bytes:
    view = fig.view
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    gen = QSvgGenerator()
    gen.setOutputDevice(buf)
    gen.setSize(fig.size)
    gen.setViewBox(QRect(QPoint(0, 0), fig.size))
    gen.setResolution(fig.dpi)
    gen.setTitle(view.title or view.name)
    gen.setDescription(f"GPT Explorer figure. {fig.context.subtitle()}".strip())
    p = QPainter(gen)
    try:
        paint_figure(p, fig)
    finally:
        p.end()
    del p, gen
    buf.close()
    return bytes(data)


def render_pdf(view, context: FigureContext | None = None, *, keep_theme: bool = False) -> bytes:
    """The figure as a one-page PDF whose page is exactly the figure (no margins)."""
    with drawing(view, context, keep_theme=keep_theme) as fig:
        return _pdf(fig)


def _pdf(fig: Figure) -> bytes:
    view = fig.view
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buf)
    writer.setResolution(fig.dpi)
    pt = 72.0 / fig.dpi
    page = QPageSize(QSizeF(fig.width * pt, fig.size.height() * pt), QPageSize.Unit.Point, "figure",
                     QPageSize.SizeMatchPolicy.ExactMatch)
    writer.setPageLayout(QPageLayout(page, QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    writer.setTitle(view.title or view.name)
    writer.setCreator("GPT Explorer")
    p = QPainter(writer)
    try:
        paint_figure(p, fig)
    finally:
        p.end()
    del p, writer
    buf.close()
    return bytes(data)


def render_format(view, fmt: str, context: FigureContext | None = None, *, scale: float | None = DEFAULT_SCALE,
                  width: int | None = None, keep_theme: bool = False) -> bytes:
    fmt = fmt.lower().lstrip(".")
    if fmt == "png":
        return render_png(view, context, scale=scale, width=width, keep_theme=keep_theme)
    if fmt == "svg":
        return render_svg(view, context, keep_theme=keep_theme)
    if fmt == "pdf":
        return render_pdf(view, context, keep_theme=keep_theme)
    raise ExportError(f"unknown figure format {fmt!r}: choose one of {', '.join(FIGURE_FORMATS)}")


def copy_image(view, context: FigureContext | None = None, *, scale: float | None = DEFAULT_SCALE,
               keep_theme: bool = False) -> QImage:
    """Put the figure on the clipboard (as an image, at ``scale``) and return it."""
    img = render_image(view, context, scale=scale, keep_theme=keep_theme)
    QGuiApplication.clipboard().setImage(img)
    return img
