"""The look of an exported figure: a temporary light theme and print-friendly drawing settings.

``export_look(root, light=True, line_scale=2.0)`` is a context manager. Inside it the views under
``root`` are drawn as they should appear on a slide or a printed page; on leaving, everything is put
back exactly as it was (no event is processed in between, so the window never flickers).

What changes while exporting:

* every pyqtgraph view gets a white background (``light=True``, the default) and its axes, titles,
  legends and bright text turn dark; the colours of the data (heatmaps, bars, points) never change,
  and text drawn over a heatmap keeps the colour the panel chose for contrast with its cell;
* the panel that holds the view gets a light palette while it is drawn: every panel restyles
  itself on a palette change (HTML colours, style sheets, plot colours), so a dark-themed panel
  draws itself light; plain widgets outside a panel get the light palette directly;
* items draw in pyqtgraph's export mode (scatter symbols as vector paths instead of cached bitmaps,
  so they stay sharp at 4x and in SVG/PDF; the auto-range button is hidden);
* the background cache is off, so SVG and PDF get no bitmap of the background;
* images are embedded losslessly in PDF (no JPEG artefacts in a heatmap);
* for raster output at scale s, thin cosmetic lines (curves, axes, reference lines) are drawn
  ``line_scale`` times wider, so a 1-pixel line in the GUI stays visible at 2x and 4x.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QWidget

from . import theme

Restore = Callable[[], None]


def luminance(c: QColor) -> float:
    """Relative luminance in 0..1 (Rec. 709 weights on the sRGB components)."""
    return 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF()


def readable_on_white(c: QColor, threshold: float = 0.72) -> QColor:
    """``c`` if it reads on white; the light theme's foreground (same alpha) if it is too bright."""
    if luminance(c) <= threshold:
        return QColor(c)
    out = QColor(theme.LIGHT.foreground)
    out.setAlpha(c.alpha())
    return out


def light_palette() -> QPalette:
    """A light palette from ``theme.LIGHT`` for plain widgets."""
    bg, fg = QColor(theme.LIGHT.background), QColor(theme.LIGHT.foreground)
    pal = QPalette()
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base, QPalette.ColorRole.AlternateBase):
        pal.setColor(role, bg)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.ToolTipText):
        pal.setColor(role, fg)
    pal.setColor(QPalette.ColorRole.Button, QColor("#F0F0F0"))
    pal.setColor(QPalette.ColorRole.Mid, QColor(theme.LIGHT.grid))
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor("#707070"))
    return pal


def graphics_views(root) -> list[QGraphicsView]:
    """The QGraphicsViews that draw ``root``: the widget itself and its descendants, or the views of
    a QGraphicsItem's scene."""
    if isinstance(root, QGraphicsItem):
        scene = root.scene()
        return list(scene.views()) if scene is not None else []
    views = [root] if isinstance(root, QGraphicsView) else []
    views += [v for v in root.findChildren(QGraphicsView) if v not in views]
    return views


def view_background(root) -> QColor:
    """The colour the first view under ``root`` paints behind its items (the theme's otherwise)."""
    for view in graphics_views(root):
        brush = view.backgroundBrush()
        if brush.style() != pg.QtCore.Qt.BrushStyle.NoBrush:
            return QColor(brush.color())
    if isinstance(root, QWidget):
        return QColor(root.palette().color(QPalette.ColorRole.Window))
    return QColor(theme.current().background)


def _image_rects(scene) -> list[QRectF]:
    return [it.sceneBoundingRect() for it in scene.items() if isinstance(it, pg.ImageItem) and it.isVisible()]


def _widen(pen: QPen, factor: float) -> QPen:
    out = QPen(pen)
    if out.isCosmetic() and factor > 1.0:
        out.setWidthF(max(out.widthF(), 1.0) * factor)
    return out


def _style_axis(ax: pg.AxisItem, light: bool, factor: float, undo: list[Restore]) -> None:
    pen, text_pen, style = ax.pen(), ax.textPen(), dict(ax.labelStyle)
    new_pen, new_text = QPen(pen), QPen(text_pen)
    if light:
        new_pen.setColor(QColor(theme.LIGHT.foreground))
        new_text.setColor(QColor(theme.LIGHT.foreground))
    ax.setPen(_widen(new_pen, factor))
    ax.setTextPen(new_text)

    def restore(ax=ax, pen=pen, text_pen=text_pen, style=style):
        ax.setPen(pen)
        ax.setTextPen(text_pen)
        ax.labelStyle = style
        ax.label.setHtml(ax.labelString())
        ax.picture = None
        ax.update()
    undo.append(restore)


def _style_label(item: pg.LabelItem, undo: list[Restore]) -> None:
    color = item.opts.get("color")
    current = pg.mkColor(color if color is not None else pg.getConfigOption("foreground"))
    wanted = readable_on_white(current)
    if wanted == current:
        return
    opts, text = dict(item.opts), item.text
    item.setText(text, color=wanted)

    def restore(item=item, opts=opts, text=text):
        item.opts.clear()
        item.opts.update(opts)
        item.setText(text)
    undo.append(restore)


def _style_text(item: pg.TextItem, images: list[QRectF], undo: list[Restore]) -> None:
    if item.fill.style() != pg.QtCore.Qt.BrushStyle.NoBrush:
        return  # a boxed label keeps its box colours
    rect = item.sceneBoundingRect()
    if any(r.intersects(rect) for r in images):
        return  # numbers on heatmap cells were coloured for contrast with the cell
    color = QColor(item.color)
    wanted = readable_on_white(color)
    if wanted == color:
        return
    item.setColor(wanted)
    undo.append(lambda item=item, color=color: item.setColor(color))


def _style_legend(item: pg.LegendItem, undo: list[Restore]) -> None:
    brush, pen = QBrush(item.brush()), QPen(item.pen())
    item.setBrush(QColor(255, 255, 255, 220))
    item.setPen(QColor(theme.LIGHT.grid))

    def restore(item=item, brush=brush, pen=pen):
        item.opts["brush"] = brush
        item.opts["pen"] = pen
        item.update()
    undo.append(restore)


def _style_curve(item, light: bool, factor: float, undo: list[Restore]) -> None:
    """A PlotDataItem's line (its setPen passes the pen on to its curve) or a bare PlotCurveItem."""
    if item.opts.get("pen") is None:
        return
    pen = QPen(item.opts["pen"]) if isinstance(item.opts.get("pen"), QPen) else pg.mkPen(item.opts.get("pen"))
    new = _widen(pen, factor)
    if light:
        new.setColor(readable_on_white(new.color()))
    if new == pen:
        return
    item.setPen(new)
    undo.append(lambda item=item, pen=pen: item.setPen(pen))


def _style_line(item: pg.InfiniteLine, light: bool, factor: float, undo: list[Restore]) -> None:
    pen = QPen(item.pen)
    new = _widen(pen, factor)
    if light:
        new.setColor(readable_on_white(new.color()))
    if new == pen:
        return
    item.setPen(new)
    undo.append(lambda item=item, pen=pen: item.setPen(pen))


def _style_scene(scene, light: bool, factor: float, undo: list[Restore]) -> None:
    if hasattr(scene, "prepareForPaint"):
        scene.prepareForPaint()  # settle auto-ranges now: it may restyle items, so before we do
    images = _image_rects(scene) if light else []
    for it in scene.items():
        if hasattr(it, "setExportMode"):
            it.setExportMode(True, {"antialias": True, "resolutionScale": 1.0})
            if isinstance(it, pg.PlotItem):
                it.updateButtons()
            undo.append(lambda it=it: it.setExportMode(False))
        if isinstance(it, pg.AxisItem):
            _style_axis(it, light, factor, undo)
        elif isinstance(it, pg.PlotDataItem) or (isinstance(it, pg.PlotCurveItem)
                                                  and not isinstance(it.parentItem(), pg.PlotDataItem)):
            _style_curve(it, light, factor, undo)
        elif isinstance(it, pg.InfiniteLine):
            _style_line(it, light, factor, undo)
        elif light and isinstance(it, pg.LabelItem):
            _style_label(it, undo)
        elif light and isinstance(it, pg.TextItem):
            _style_text(it, images, undo)
        elif light and isinstance(it, pg.LegendItem):
            _style_legend(it, undo)
        elif light and isinstance(it, pg.ViewBox):
            bg = it.background
            if bg.isVisible() and bg.brush().style() != pg.QtCore.Qt.BrushStyle.NoBrush:
                brush = QBrush(bg.brush())
                bg.setBrush(QColor(theme.LIGHT.background))
                undo.append(lambda bg=bg, brush=brush: bg.setBrush(brush))


def _style_view(view: QGraphicsView, light: bool, undo: list[Restore]) -> None:
    cache, lossless = view.cacheMode(), view.renderHints()
    view.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
    view.setRenderHint(QPainter.RenderHint.LosslessImageRendering, True)
    view.resetCachedContent()
    undo.append(lambda view=view, cache=cache: view.setCacheMode(cache))
    undo.append(lambda view=view, hints=lossless: view.setRenderHints(hints))
    if light:
        if isinstance(view, pg.GraphicsView):
            saved = view._background  # pyqtgraph keeps what setBackground() was given
            view.setBackground(theme.LIGHT.background)
            undo.append(lambda view=view, saved=saved: view.setBackground(saved))
        else:
            brush = QBrush(view.backgroundBrush())
            view.setBackgroundBrush(QColor(theme.LIGHT.background))
            undo.append(lambda view=view, brush=brush: view.setBackgroundBrush(brush))


def owning_panel(root) -> QWidget | None:
    """The ``Panel`` that holds ``root`` (a widget, or a graphics item through its view)."""
    from .panels.base import Panel

    if isinstance(root, QGraphicsItem):
        views = graphics_views(root)
        root = views[0] if views else None
    w = root
    while w is not None:
        if isinstance(w, Panel):
            return w
        w = w.parentWidget()
    return None


def _is_light(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Window).lightness() >= 128


def _style_widget(widget: QWidget, undo: list[Restore]) -> None:
    """A light palette on ``widget``. Panels restyle themselves on a palette change (their HTML,
    style sheets and plot colours), so setting it on the panel draws the whole view light."""
    had_own = widget.testAttribute(pg.QtCore.Qt.WidgetAttribute.WA_SetPalette)
    saved = QPalette(widget.palette())
    widget.setPalette(light_palette())

    def restore(widget=widget, saved=saved, had_own=had_own):
        if had_own:
            widget.setPalette(saved)
        else:
            widget.setPalette(QPalette())
            widget.setAttribute(pg.QtCore.Qt.WidgetAttribute.WA_SetPalette, False)
    undo.append(restore)


@contextmanager
def export_look(root, *, light: bool = True, line_scale: float = 1.0) -> Iterator[None]:
    """Draw ``root`` (a QWidget or QGraphicsItem) for export inside the ``with`` block; see the
    module docstring. ``line_scale`` > 1 widens cosmetic lines (use the raster scale, capped)."""
    undo: list[Restore] = []
    try:
        if light:
            target = owning_panel(root) or (root if isinstance(root, QWidget) else None)
            if target is not None and not _is_light(target):
                _style_widget(target, undo)
            elif isinstance(root, QWidget) and root is not target:
                _style_widget(root, undo)
        scenes = []
        for view in graphics_views(root):
            _style_view(view, light, undo)
            if view.scene() is not None and view.scene() not in scenes:
                scenes.append(view.scene())
        for scene in scenes:
            _style_scene(scene, light, line_scale, undo)
        yield
    finally:
        for restore in reversed(undo):
            try:
                restore()
            except RuntimeError:
                pass  # the item was deleted while exporting
