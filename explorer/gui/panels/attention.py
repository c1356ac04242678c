"""The attention panel: where does each position look?

Three views of the selected block's attention, all following the shared ``Selection``:

* **Heatmap** (``AttentionHeatmap``): the selected head's pattern T×T (or the mean over heads, or
  the pre-softmax scores), prompt characters on both axes, the causal upper triangle masked,
  colour bar 0..1. Clicking a row selects that query position for every panel.
* **Model view** (``HeadGrid``): every block × head as a small heatmap with its mean per-row
  entropy; clicking a cell selects that block and head; the selected cell is outlined.
* **Text view** (``AttentionText``): the prompt shaded by how much the selected query attends to
  each character, as BertViz's head view does.

Selecting the embeddings shows block 0 and selecting ln_f / lm_head shows the last block
(``Selection.block``). Items are built once per model shape; a new trace only calls
``setImage``. No torch here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QSpinBox, QSplitter, QVBoxLayout, QWidget

from ._attn_flow import FlowLayout, ResponsiveSplitter, group
from ._attn_grid import HeadGrid
from ._attn_heatmap import AttentionHeatmap
from ._attn_style import palette_theme
from ._attn_text import AttentionText
from .base import Caption, ExportView, Panel

if TYPE_CHECKING:  # the panels only read traces; the type is for readers
    from ...core.trace import Trace

HEATMAP_HELP = (
    "Each row is a query: the character that is looking. Each column is a key: a character it may "
    "look at. The colour is the attention weight softmax(q·k/√head_size) of that query on that key, "
    "so every row sums to 1. The grey hatched triangle is the causal mask: a character can only look "
    "at itself and earlier characters, which is what lets a GPT learn to predict the next character "
    "without seeing it. The head then mixes the value vectors of the keys with these weights. "
    "'Pre-softmax scores' shows q·k/√head_size before the softmax; 'Average heads' shows the mean "
    "pattern of all heads of the block. Click a row to make that position the query everywhere."
)
GRID_HELP = (
    "Every attention head of the model at once: rows are blocks (the nn.Sequential of Blocks), "
    "columns are heads. The number on a cell is the head's entropy in nats, averaged over the query "
    "rows: near 0 means each position looks at a single character (a sharp head, e.g. 'previous "
    "character'); near the uniform value means it spreads its attention evenly. Click a cell to show "
    "that head in the large heatmap."
)
TEXT_HELP = (
    "The prompt, each character's background shaded by how much the selected query position attends "
    "to it in this head (the darkest shade is the largest weight of the row). Struck-through "
    "characters come after the query and are hidden from it by the causal mask. Click a character "
    "to make it the query."
)


@lru_cache(maxsize=8)
def causal_mask(T: int) -> np.ndarray:
    """True where a key lies in the query's future (k > q), (T, T), read-only."""
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)
    mask.flags.writeable = False
    return mask


def head_entropies(patterns: np.ndarray) -> np.ndarray:
    """Mean over query rows of the row entropy in nats, for patterns (..., T, T) → (...)."""
    if patterns.shape[-1] == 0:
        return np.zeros(patterns.shape[:-2])
    p = patterns.astype(np.float32, copy=False)
    # 0 · log(tiny) = 0, so masked (exactly zero) weights add nothing, as 0 · log 0 should
    return -(p * np.log(np.maximum(p, np.float32(1e-30)))).sum(-1).mean(-1)


def grid_indices(patterns: np.ndarray) -> np.ndarray:
    """Patterns (L, H, T, T) in [0, 1] → uint8 colour indices for the head grid's ``grid_lut``
    (0..253 the weight, 255 masked)."""
    T = patterns.shape[-1]
    idx = (patterns * np.float32(253.0) + np.float32(0.5)).astype(np.uint8)  # masked weights are exactly 0
    idx += causal_mask(T).astype(np.uint8) * np.uint8(255)
    return idx


def uniform_entropy(T: int) -> float:
    """Mean row entropy of causal uniform attention (query q spreads over q + 1 keys)."""
    return float(np.mean(np.log(np.arange(1, T + 1)))) if T else 0.0


class AttentionPanel(Panel):
    title = "Attention"
    help_text = HEATMAP_HELP

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._shape = (0, 0)
        self._entropies = np.zeros((0, 0))
        self._all_patterns: np.ndarray | None = None
        self._shown: dict = {}

        # controls
        self.block_spin = QSpinBox()
        self.block_spin.setPrefix("block ")
        self.block_spin.setToolTip("Which block's attention to show (the grid selects too)")
        self.head_spin = QSpinBox()
        self.head_spin.setPrefix("head ")
        self.head_spin.setToolTip("Which head of the block to show")
        self.avg_check = QCheckBox("&Average heads")
        self.avg_check.setToolTip("Show the mean attention pattern over all heads of the block (Alt+A)")
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("weights (after softmax)", "weights")
        self.mode_combo.addItem("scores (before softmax)", "scores")
        self.mode_combo.setToolTip("Attention weights softmax(q·k/√hs), or the raw scores q·k/√hs")
        self.entropy_check = QCheckBox("&Entropy on cells")
        self.entropy_check.setChecked(True)
        self.entropy_check.setToolTip("Show each head's mean row entropy (nats) on the grid cells (Alt+E)")
        self.controls = QWidget()
        controls = FlowLayout(self.controls)
        for w in (group(QLabel("Show"), self.block_spin, self.head_spin), self.avg_check, self.mode_combo,
                  self.entropy_check):
            controls.addWidget(w)

        # views
        self.heatmap = AttentionHeatmap()
        self.heatmap_caption = Caption("Attention pattern of the selected head", HEATMAP_HELP)
        self.grid = HeadGrid()
        self.grid_caption = Caption("Every block × head", GRID_HELP)
        self.text_view = AttentionText()
        self.text_caption = Caption("Where the selected position looks", TEXT_HELP)

        def boxed(caption: Caption, view: QWidget) -> QWidget:
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(0)
            lay.addWidget(caption)
            lay.addWidget(view, 1)
            return box

        top = ResponsiveSplitter(760)
        top.addWidget(boxed(self.heatmap_caption, self.heatmap))
        top.addWidget(boxed(self.grid_caption, self.grid))
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(boxed(self.text_caption, self.text_view))
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.controls)
        layout.addWidget(self.splitter, 1)

        self.block_spin.valueChanged.connect(lambda v: self._request(layer=v))
        self.head_spin.valueChanged.connect(lambda v: self._request(head=v))
        self.avg_check.toggled.connect(self._options_changed)
        self.mode_combo.currentIndexChanged.connect(self._options_changed)
        self.entropy_check.toggled.connect(self.grid.set_show_entropy)
        self.heatmap.rowClicked.connect(lambda q: self.selectionRequested.emit({"position": int(q)}))
        self.text_view.charClicked.connect(lambda q: self.selectionRequested.emit({"position": int(q)}))
        self.grid.cellClicked.connect(
            lambda layer, head: self.selectionRequested.emit({"layer": int(layer), "head": int(head)}))
        self._set_controls_enabled(False)
        self._apply_theme()

    # ---- options -------------------------------------------------------------------------------
    @property
    def average_heads(self) -> bool:
        return self.avg_check.isChecked()

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def set_average_heads(self, on: bool) -> None:
        self.avg_check.setChecked(bool(on))

    def set_mode(self, mode: str) -> None:
        if mode not in ("weights", "scores"):
            raise ValueError(f"mode must be 'weights' or 'scores', got {mode!r}")
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))

    def _options_changed(self, *_):
        self.head_spin.setEnabled(not self.average_heads and self.trace is not None)
        if self.trace is not None:
            self.render()

    def _request(self, **changes) -> None:
        if self.trace is None:
            return
        current = {"layer": self._block(), "head": self._head()}
        if any(current[k] != v for k, v in changes.items()):
            self.selectionRequested.emit(changes)

    def _set_controls_enabled(self, on: bool) -> None:
        for w in (self.block_spin, self.head_spin, self.avg_check, self.mode_combo):
            w.setEnabled(on)
        self.head_spin.setEnabled(on and not self.average_heads)

    # ---- panel contract ------------------------------------------------------------------------
    def set_trace(self, trace: Trace) -> None:
        self.trace = trace
        L, H, T = trace.n_layer, trace.config.n_head, trace.T
        if (L, H) != self._shape:
            self.grid.build(L, H)
            self._shape = (L, H)
            for spin, top in ((self.block_spin, L - 1), (self.head_spin, H - 1)):
                spin.blockSignals(True)
                spin.setRange(0, top)
                spin.blockSignals(False)
        self._set_controls_enabled(True)
        if T:
            P = np.stack([trace.pattern(i) for i in range(L)])  # (L, H, T, T)
            idx = grid_indices(P)
            self._entropies = head_entropies(P)  # (L, H)
            self._all_patterns = P
        else:
            idx = np.zeros((L, H, 0, 0), np.uint8)
            self._entropies = np.zeros((L, H))
            self._all_patterns = np.zeros((L, H, 0, 0), np.float32)
        self.grid.update_cells(idx, self._entropies, uniform_entropy(T))
        self.render()

    def _block(self) -> int:
        L = self.trace.n_layer if self.trace is not None else 1
        return self.selection.block(L)

    def _head(self) -> int:
        H = self.trace.config.n_head if self.trace is not None else 1
        return max(0, min(self.selection.head, H - 1))

    def render(self) -> None:
        trace = self.trace
        if trace is None:
            return
        b, h, T = self._block(), self._head(), trace.T
        q = self.selection.resolved_position(T)
        for spin, v in ((self.block_spin, b), (self.head_spin, h)):
            spin.blockSignals(True)
            spin.setValue(v)
            spin.blockSignals(False)
        avg = self.average_heads
        self.grid.set_selected(b, None if avg else h)
        labels = trace.display_tokens
        which = f"mean of {trace.config.n_head} heads" if avg else f"head {h}"
        note = ""
        if self.selection.layer < 0:
            note = " (embeddings selected: showing the first block)"
        elif self.selection.layer >= trace.n_layer:
            note = " (ln_f / lm_head selected: showing the last block)"
        if T == 0:
            empty = np.zeros((0, 0), np.float32)
            self.heatmap.show(empty, empty, empty, [], (0.0, 1.0), "attention weight", None)
            self.heatmap_caption.set_text(f"Block {b} · {which}: the prompt is empty")
            self.text_view.show_row([], np.zeros(0), None, self._theme)
            self.text_caption.set_text("Type a prompt to see where each position looks")
            self.grid_caption.set_text(f"All {trace.n_layer} blocks × {trace.config.n_head} heads: empty prompt")
            self._shown = {"block": b, "head": None if avg else h, "query": None}
            return
        mask = causal_mask(T)
        pattern = trace.pattern(b)  # (H, T, T)
        scores = trace.scores(b)  # (H, T, T), -inf where masked
        if avg:
            weights = pattern.mean(0)  # (T, T)
            with np.errstate(invalid="ignore"):
                raw = scores.mean(0)
        else:
            weights, raw = pattern[h], scores[h]
        raw = np.where(mask, np.nan, raw).astype(np.float32)
        if self.mode == "scores":
            image = raw
            lo, hi = float(np.nanmin(raw)), float(np.nanmax(raw))
            if not hi > lo:
                lo, hi = lo - 0.5, hi + 0.5
            levels, bar = (lo, hi), "score q·k/√hs"
            what = (f"pre-softmax scores q·k/√{trace.config.head_size}, range {lo:+.2f} … {hi:+.2f} "
                    f"(the colour bar spans it)")
        else:
            image = np.where(mask, np.nan, weights).astype(np.float32)
            levels, bar = (0.0, 1.0), "attention weight"
            what = "attention weights (each row sums to 1, colour 0 … 1)"
        self.heatmap.show(image, weights, raw, labels, levels, bar, q)
        self.heatmap_caption.set_text(f"Block {b} · {which}: {what}{note}")
        self.text_view.show_row(list(trace.tokens), weights[q], q, self._theme)
        wmax = float(weights[q, : q + 1].max())
        self.text_caption.set_text(
            f"Where position {q} '{labels[q]}' looks (block {b}, {which}): darkest shade = largest "
            f"weight {wmax:.3f}")
        self.grid_caption.set_text(
            f"All {trace.n_layer} blocks × {trace.config.n_head} heads (weights); number = mean row "
            f"entropy in nats, uniform = {uniform_entropy(T):.2f}")
        self._shown = {"block": b, "head": None if avg else h, "query": q, "image": image,
                       "weights": weights, "scores": raw, "mode": self.mode}

    # ---- theme ---------------------------------------------------------------------------------
    @property
    def _theme(self):
        return palette_theme(self)

    def _apply_theme(self) -> None:
        theme = self._theme
        self.heatmap.apply_theme(theme)
        self.grid.apply_theme(theme)
        if self.trace is not None:
            self.render()

    def changeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        if ev.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_theme()
        super().changeEvent(ev)

    # ---- export --------------------------------------------------------------------------------
    def _describe_shown(self) -> str:
        s = self._shown
        if not s:
            return "no trace"
        head = "mean over heads" if s["head"] is None else f"head {s['head']}"
        pos = "" if s["query"] is None else f" · query position {s['query']}"
        return f"block {s['block']} · {head}{pos}"

    def export_views(self) -> list[ExportView]:
        desc = self._describe_shown()
        mode = "scores" if self._shown.get("mode") == "scores" else "weights"
        L, H = self._shape
        return [
            ExportView("attention_heatmap", self.heatmap.glw, f"Attention {mode} · {desc}"),
            ExportView("attention_heads", self.grid, f"Attention of all {L} blocks × {H} heads"),
            ExportView("attention_text", self.text_view, f"Where the query looks · {desc}"),
        ]

    def export_data(self) -> dict:
        trace = self.trace
        if trace is None:
            return {}
        tokens = np.array(list(trace.tokens) or [""], dtype=str)[: trace.T]
        b = self._block()
        out = {
            f"attention_block{b}": {
                "pattern": np.asarray(trace.pattern(b)),  # (H, T, T)
                "scores": np.asarray(trace.scores(b)),  # (H, T, T), -inf where masked
                "tokens": tokens,
            },
            "attention_all_blocks": {
                "patterns": np.asarray(self._all_patterns),  # (L, H, T, T)
                "mean_row_entropy": np.asarray(self._entropies),  # (L, H)
                "tokens": tokens,
            },
        }
        if "image" in self._shown:
            out[f"attention_block{b}"]["shown"] = np.asarray(self._shown["image"])
        return out
