"""Characters drawn as scatter-plot markers, and the colours of the character classes.

Each token is a coloured disc (its character class, Okabe–Ito colours) with its character printed
on it in black or white, whichever contrasts more. The character is a ``QPainterPath`` used as a
pyqtgraph symbol, so one ``ScatterPlotItem`` draws every label at once and labels keep their
on-screen size when the user zooms (zooming in spreads crowded labels apart).

Paths, pens and brushes are cached: pyqtgraph's symbol atlas keys on the objects' identity, so
reusing them makes a re-draw a cache hit.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainterPath, QTransform
import pyqtgraph as pg

from ...core.projection import CHAR_CLASSES
from ...core.tokenizer import display_char
from ..theme import OKABE_ITO
from ._embed_common import contrast_text

# One Okabe–Ito colour per class in CHAR_CLASSES (yellow is left out: it vanishes on white).
CLASS_COLORS = (
    OKABE_ITO["vermillion"],  # lowercase vowel
    OKABE_ITO["blue"],  # lowercase consonant
    OKABE_ITO["green"],  # uppercase
    OKABE_ITO["purple"],  # digit
    OKABE_ITO["orange"],  # punctuation
    OKABE_ITO["sky"],  # whitespace
    OKABE_ITO["grey"],  # other
)
assert len(CLASS_COLORS) == len(CHAR_CLASSES)


class GlyphBook:
    """Cached marker paths for characters, and cached pens/brushes for the classes."""

    def __init__(self, family: str = "DejaVu Sans") -> None:
        self.font = QFont(family)
        self.font.setPointSize(48)  # paths are scaled down to unit size; a big source keeps curves smooth
        self.font.setBold(True)
        self._fm = QFontMetricsF(self.font)
        self._paths: dict[str, QPainterPath] = {}
        self.class_brushes = [pg.mkBrush(c) for c in CLASS_COLORS]
        self.text_brushes = [pg.mkBrush(contrast_text(c)) for c in CLASS_COLORS]
        self.faded_brushes = [pg.mkBrush(QColor(c).red(), QColor(c).green(), QColor(c).blue(), 70)
                              for c in CLASS_COLORS]
        self.no_pen = pg.mkPen(None)
        self.disc_pen = pg.mkPen(QColor(0, 0, 0, 90), width=1)

    def path(self, token: str) -> QPainterPath:
        """A path for the visible form of ``token`` (⏎, ␣ …), centred on 0 and at most about 0.62
        units tall, so printed on a disc of size 1 it leaves a margin."""
        text = display_char(token)
        p = self._paths.get(text)
        if p is not None:
            return p
        raw = QPainterPath()
        raw.addText(0, 0, self.font, text)
        br = raw.boundingRect()
        em = self._fm.ascent()  # scale by the font's size, not the glyph's, so "." stays small…
        s = 0.62 / em
        if br.width() * s > 0.78:  # …but wide labels (U+0001) shrink to fit the disc
            s = 0.78 / br.width()
        if br.height() * s < 0.16 and br.height() > 0:  # and tiny marks ("." "'") stay visible
            s = min(0.16 / br.height(), 0.78 / max(br.width(), 1e-9))
        tr = QTransform()
        tr.scale(s, s)
        tr.translate(-br.center().x(), -br.center().y())
        p = tr.map(raw)
        p.setFillRule(Qt.FillRule.WindingFill)
        self._paths[text] = p
        return p

    def paths(self, tokens) -> list[QPainterPath]:
        return [self.path(t) for t in tokens]
