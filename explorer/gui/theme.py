"""Colours and fonts shared by every view: colour-blind-safe palettes and the light/dark theme.

* ``OKABE_ITO``: the Okabe–Ito palette, distinguishable with every common colour-vision deficiency.
* Heatmaps use ``cividis`` (colour-blind safe, perceptually uniform) or ``viridis``.
* ``Theme`` gives background/foreground colours; exports default to the light theme (white).
"""
from __future__ import annotations

from dataclasses import dataclass

OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#999999",
    "black": "#000000",
}
SERIES = [OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "yellow", "grey")]
HEATMAP_CMAP = "cividis"
MASK_COLOR = "#BBBBBB"  # the causal mask's cells, drawn hatched/greyed, never as zero


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    foreground: str
    grid: str
    accent: str


LIGHT = Theme("light", background="#FFFFFF", foreground="#202020", grid="#D0D0D0", accent=OKABE_ITO["blue"])
DARK = Theme("dark", background="#1E1E1E", foreground="#E6E6E6", grid="#505050", accent=OKABE_ITO["sky"])

_current = LIGHT


def current() -> Theme:
    return _current


def set_current(theme: Theme) -> None:
    global _current
    _current = theme


# Font sizes in points, large enough to read on a projector.
FONT_PT = 11
TITLE_PT = 13
LABEL_PT = 11
