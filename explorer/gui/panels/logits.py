"""The logits panel: what does the model predict next, and how does that prediction form?

Four views, all following the shared ``Selection`` (the position; the lens also marks the layer):

* **Next character** (``NextCharBars``): the top-k of softmax(logits / T) at the selected position
  (the last by default), the true next character highlighted, its probability and the entropy in
  the summary line. Temperature, top-k and top-p re-draw it at once, without a forward pass.
  "Generate" samples N characters with those settings (``GenerationRun``) and appends them one
  at a time, each drawn from the new trace's last position.
* **Predictions strip** (``PredictionStrip``): under each prompt character the top guess for the
  next one, coloured by probability and marked right or wrong.
* **Logit lens** (``LogitLensView``): lm_head(ln_f(resid)) after the embedding and every block.
* **nn.Linear worked example** (``linear_example``): one logit as x · W[token] + b.

No torch here: everything is read from the ``Trace``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QDoubleSpinBox, QLabel, QPushButton, QSlider, QSpinBox, QSplitter, QTextBrowser,
                               QToolButton, QVBoxLayout, QWidget)

from ...core.stats import entropy, softmax
from ...core.tokenizer import display_char
from ..selection import EMBED
from ..wrapped_text import WrappedText
from ._attn_flow import FlowLayout, ResponsiveSplitter, group
from ._attn_style import palette_theme
from ._logits_bars import BarData, NextCharBars
from ._logits_lens import LogitLensView
from ._logits_linear import linear_example, linear_example_html
from ._logits_sampling import GenerationRun, sampling_distribution
from ._logits_strip import PredictionStrip, StripData
from .base import Caption, ExportView, Panel, Table

if TYPE_CHECKING:  # the panels only read traces; the type is for readers
    from ...core.trace import Trace

BARS_HELP = (
    "lm_head turns the last vector of the residual stream into one number per character, the logits. "
    "softmax(logits / T) turns them into probabilities for the next character. The bars are the k most "
    "likely characters at the selected position; the orange bar is the character that really comes "
    "next in the prompt. The temperature T divides the logits before the softmax: T < 1 sharpens the "
    "distribution, T > 1 flattens it (dashed outlines show T = 1). Top-k keeps only the k most likely "
    "characters and top-p the smallest set whose probabilities add up to p; the grey bars are cut and "
    "never sampled. Generate samples characters one at a time and appends them to the prompt."
)
STRIP_HELP = (
    "A GPT predicts the next character at every position at once. Under each character of the prompt "
    "is the model's most likely next character, coloured by its probability (dark = unsure, yellow = "
    "sure), and ✓ where the prompt really continues with it, ✗ where it does not. Training lowers "
    "the loss, which is −log p of the true next character averaged over these positions."
)
LENS_HELP = (
    "The logit lens applies the final LayerNorm and lm_head to the residual stream after the "
    "embeddings and after every block, as if the model stopped there. Each cell shows the character "
    "it would predict and how sure it would be (colour). Reading down a column shows where in the "
    "depth of the model the prediction forms. Bold underlined characters match the prompt's true next "
    "character. Click a cell to select that layer and position."
)
LINEAR_HELP = (
    "lm_head is an nn.Linear(n_embd, vocab_size). PyTorch stores its weight W as (out_features, "
    "in_features) = (vocab_size, n_embd) and computes y = x @ W.T + b. So each logit is a dot product "
    "of x (the vector after ln_f) with one row of W, plus one bias. The table lists the channels that "
    "contribute most to the logit of the top character (click a bar to pick another character)."
)


def _slider_to_t(s: int) -> float:
    return round(10 ** (s / 100.0), 2)


def _t_to_slider(t: float) -> int:
    return int(round(100 * math.log10(t)))


class LogitsPanel(Panel):
    title = "Logits"
    help_text = BARS_HELP

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run: GenerationRun | None = None
        self._linear_token: int | None = None
        self._lens_probs: np.ndarray | None = None
        self._shown: dict = {}
        self._build_controls()
        self._build_views()
        self._set_enabled(False)
        self._apply_theme()

    # ---- construction --------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 100)
        self.k_spin.setValue(10)
        self.k_spin.setToolTip("How many of the most likely characters to draw as bars")
        self.temp_slider = QSlider(Qt.Orientation.Horizontal)
        self.temp_slider.setRange(_t_to_slider(0.05), _t_to_slider(5.0))
        self.temp_slider.setValue(0)
        self.temp_slider.setMinimumWidth(140)
        self.temp_slider.setToolTip("Temperature T (log scale): probabilities are softmax(logits / T)")
        self.temp_spin = QDoubleSpinBox()
        self.temp_spin.setRange(0.05, 5.0)
        self.temp_spin.setSingleStep(0.05)
        self.temp_spin.setDecimals(2)
        self.temp_spin.setValue(1.0)
        self.temp_spin.setToolTip("Temperature T: below 1 sharpens the distribution, above 1 flattens it")
        self.temp_reset = QToolButton()
        self.temp_reset.setText("T=1")
        self.temp_reset.setToolTip("Back to temperature 1 (the model's own distribution)")
        self.topk_spin = QSpinBox()
        self.topk_spin.setRange(0, 100)
        self.topk_spin.setSpecialValueText("off")
        self.topk_spin.setToolTip("Sample only from the k most likely characters (off = all)")
        self.topp_spin = QDoubleSpinBox()
        self.topp_spin.setRange(0.01, 1.0)
        self.topp_spin.setSingleStep(0.05)
        self.topp_spin.setDecimals(2)
        self.topp_spin.setValue(1.0)
        self.topp_spin.setToolTip("Nucleus sampling: only the most likely characters whose probabilities "
                                  "add up to p (1.00 = off)")
        self.n_spin = QSpinBox()
        self.n_spin.setRange(1, 2000)
        self.n_spin.setValue(50)
        self.n_spin.setToolTip("How many characters Generate appends")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(1337)
        self.seed_spin.setToolTip("Random seed: the same seed and prompt generate the same text")
        self.seed_new = QToolButton()
        self.seed_new.setText("new")
        self.seed_new.setToolTip("Pick a new random seed")
        self.delay_spin = QSpinBox()
        self.delay_spin.setRange(0, 2000)
        self.delay_spin.setSingleStep(50)
        self.delay_spin.setValue(80)
        self.delay_spin.setSuffix(" ms")
        self.delay_spin.setToolTip("Pause between generated characters, to watch the views change")
        self.gen_button = QPushButton("Generate")
        self.gen_button.setToolTip("Sample N characters and append them one at a time (Ctrl+G)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop generating (Esc)")
        self.stop_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setToolTip("What Generate is doing")

        self.controls = QWidget()
        flow = FlowLayout(self.controls)
        for w in (group(QLabel("bars"), self.k_spin),
                  group(QLabel("temperature"), self.temp_slider, self.temp_spin, self.temp_reset),
                  group(QLabel("sample: top-k"), self.topk_spin), group(QLabel("top-p"), self.topp_spin),
                  group(QLabel("N"), self.n_spin), group(QLabel("seed"), self.seed_spin, self.seed_new),
                  group(QLabel("delay"), self.delay_spin), group(self.gen_button, self.stop_button), self.status):
            flow.addWidget(w)

        self.k_spin.valueChanged.connect(lambda _: self._render_distribution())
        self.temp_slider.valueChanged.connect(lambda s: self.temp_spin.setValue(_slider_to_t(s)))
        self.temp_spin.valueChanged.connect(self._on_temperature)
        self.temp_reset.clicked.connect(lambda: self.temp_spin.setValue(1.0))
        self.topk_spin.valueChanged.connect(lambda _: self._render_distribution())
        self.topp_spin.valueChanged.connect(lambda _: self._render_distribution())
        self.seed_new.clicked.connect(
            lambda: self.seed_spin.setValue(int(np.random.default_rng().integers(0, 2**31 - 1))))
        self.gen_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(lambda: self.stop("stopped"))
        for keys, slot in (("Ctrl+G", self.generate), ("Escape", lambda: self.stop("stopped"))):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    def _build_views(self) -> None:
        self.bars = NextCharBars()
        self.bars_caption = Caption("Next character", BARS_HELP)
        self.summary = WrappedText()  # changes with every trace: no re-layout unless its line count does
        self.strip = PredictionStrip()
        self.strip_caption = Caption("Top prediction after each character", STRIP_HELP)
        self.lens = LogitLensView()
        self.lens_caption = Caption("Logit lens", LENS_HELP)
        self.linear_view = QTextBrowser()
        self.linear_view.setOpenLinks(False)
        self.linear_view.setMinimumHeight(100)
        self.linear_caption = Caption("lm_head as nn.Linear", LINEAR_HELP)

        def boxed(*widgets, stretch_last=True) -> QWidget:
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(0)
            for i, w in enumerate(widgets):
                lay.addWidget(w, 1 if (stretch_last and i == len(widgets) - 1) else 0)
            return box

        top = ResponsiveSplitter(760)
        top.addWidget(boxed(self.bars_caption, self.summary, self.bars))
        top.addWidget(boxed(self.linear_caption, self.linear_view))
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(boxed(self.lens_caption, self.lens))
        self.splitter.addWidget(boxed(self.strip_caption, self.strip, stretch_last=False))
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setStretchFactor(2, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.controls)
        layout.addWidget(self.splitter, 1)

        self.bars.barClicked.connect(self._on_bar_clicked)
        self.strip.positionClicked.connect(lambda i: self.selectionRequested.emit({"position": int(i)}))
        self.lens.cellClicked.connect(self._on_lens_clicked)

    # ---- settings --------------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return float(self.temp_spin.value())

    def set_temperature(self, t: float) -> None:
        if not 0.05 <= t <= 5.0:
            raise ValueError(f"temperature must be between 0.05 and 5, got {t}")
        self.temp_spin.setValue(t)

    @property
    def sample_top_k(self) -> int | None:
        return self.topk_spin.value() or None

    @property
    def sample_top_p(self) -> float | None:
        p = float(self.topp_spin.value())
        return None if p >= 1.0 else p

    def _on_temperature(self, t: float) -> None:
        self.temp_slider.blockSignals(True)
        self.temp_slider.setValue(_t_to_slider(max(t, 0.05)))
        self.temp_slider.blockSignals(False)
        self._render_distribution()

    def _set_enabled(self, on: bool) -> None:
        running = self.run is not None and self.run.active
        self.gen_button.setEnabled(on and not running)
        self.stop_button.setEnabled(running)
        if not on:
            self.gen_button.setToolTip("Type at least one character: Generate continues the prompt")
        else:
            self.gen_button.setToolTip("Sample N characters and append them one at a time (Ctrl+G)")

    # ---- generation ----------------------------------------------------------------------------
    def generate(self) -> None:
        """Start sampling N characters from the current trace (no-op while one run is active)."""
        if self.trace is None or self.trace.T == 0 or (self.run is not None and self.run.active):
            if self.trace is not None and self.trace.T == 0:
                self.status.setText("Type at least one character first.")
            return
        run = GenerationRun(self.n_spin.value(), self.seed_spin.value(), self.temperature,
                            self.sample_top_k, self.sample_top_p, self.delay_spin.value(), parent=self)
        run.appendText.connect(self.appendTextRequested)
        run.progress.connect(lambda i, n: self.status.setText(f"generating {i}/{n}…"))
        run.finished.connect(self._on_run_finished)
        self.run = run
        self.status.setText(f"generating 0/{run.n}…")
        self._set_enabled(True)
        run.start(self.trace)

    def stop(self, message: str = "stopped") -> None:
        if self.run is not None and self.run.active:
            self.run.stop(message)

    def _on_run_finished(self, message: str) -> None:
        self.status.setText(message)
        self._set_enabled(self.trace is not None and self.trace.T > 0)

    # ---- panel contract ------------------------------------------------------------------------
    def set_trace(self, trace: Trace) -> None:
        self.trace = trace
        self._lens_probs = softmax(trace.logit_lens) if trace.T else np.zeros(trace.logit_lens.shape)
        if self._linear_token is not None and self._linear_token >= len(trace.vocab):
            self._linear_token = None
        self.k_spin.setMaximum(len(trace.vocab))
        self.topk_spin.setMaximum(len(trace.vocab))
        self._render_lens_data()
        self.render()
        self._set_enabled(trace.T > 0)
        if self.run is not None and self.run.active:
            self.run.on_trace(trace)

    def position(self) -> int | None:
        return self.selection.resolved_position(self.trace.T) if self.trace is not None else None

    def actual_next(self, pos: int | None) -> int | None:
        """The id of the character that follows ``pos`` in the prompt, if there is one."""
        if self.trace is None or pos is None or pos + 1 >= self.trace.T:
            return None
        return int(self.trace.ids[pos + 1])

    def lens_depth(self) -> int:
        L = self.trace.n_layer if self.trace is not None else 0
        return max(0, min(self.selection.layer + 1, L))

    def render(self) -> None:
        if self.trace is None:
            return
        pos = self.position()
        self._render_distribution()
        self._render_strip(pos)
        self.lens.set_selected(self.lens_depth(), pos)
        T = self.trace.T
        self.lens_caption.set_text(
            f"Logit lens: top next-character guess after the embeddings and each of the "
            f"{self.trace.n_layer} blocks, for all {T} positions (p at T = 1)" if T else
            "Logit lens: the prompt is empty")

    def _distribution(self, pos: int):
        logits = np.asarray(self.trace.logits[pos], dtype=np.float64)  # (V,)
        probs = softmax(logits, self.temperature)  # (V,)
        probs_t1 = softmax(logits)
        sampling = sampling_distribution(logits, self.temperature, self.sample_top_k, self.sample_top_p)
        return logits, probs, probs_t1, sampling

    def _render_distribution(self) -> None:
        trace = self.trace
        if trace is None:
            return
        pos = self.position()
        if pos is None:
            self.bars.show_data(None)
            self.summary.setText("The prompt is empty: type a few characters.")
            self.bars_caption.set_text("Next character: no prompt yet")
            self.linear_view.setHtml("<p>The prompt is empty.</p>")
            self._shown = {}
            return
        logits, probs, probs_t1, sampling = self._distribution(pos)
        V = logits.shape[0]
        order = np.argsort(-logits, kind="stable")
        ranks = np.empty(V, np.int64)
        ranks[order] = np.arange(1, V + 1)
        k = min(self.k_spin.value(), V)
        ids = list(order[:k])
        actual = self.actual_next(pos)
        gap = actual is not None and actual not in ids
        if gap:
            ids.append(actual)
        ids = np.asarray(ids, dtype=np.int64)
        vis = [display_char(trace.vocab[i]) for i in ids]
        self.bars.show_data(BarData(ids=ids, labels=vis, probs=probs[ids], probs_t1=probs_t1[ids],
                                    logits=logits[ids], sampling=sampling[ids], ranks=ranks[ids], actual=actual,
                                    temperature=self.temperature, gap_before_last=gap))
        here = display_char(trace.tokens[pos])
        H = float(entropy(probs))
        text = (f"After position {pos} '{here}': entropy {H:.2f} nats (uniform over {V} = {math.log(V):.2f})"
                f" at T = {self.temperature:.2f}")
        if actual is not None:
            a = display_char(trace.vocab[actual])
            text += f" · actual next '{a}': p = {probs[actual]:.3f}, rank {ranks[actual]} of {V}"
        else:
            text += " · the next character is not in the prompt yet"
        self.summary.setText(text)
        self.bars_caption.set_text(f"Next character after position {pos} '{here}': top {k} of softmax(logits / T)")
        token = self._linear_token if self._linear_token is not None else int(order[0])
        ex = linear_example(trace, pos, token)
        self.linear_view.setHtml(linear_example_html(ex, trace, self._theme, chosen=self._linear_token is not None))
        self.linear_caption.set_text(f"lm_head as nn.Linear: logit of '{display_char(trace.vocab[token])}' "
                                     f"at position {pos}")
        self._shown = {"pos": pos, "ids": ids, "probs": probs, "probs_t1": probs_t1, "logits": logits,
                       "sampling": sampling, "ranks": ranks, "actual": actual, "entropy": H, "example": ex}

    def _render_strip(self, pos: int | None) -> None:
        trace = self.trace
        T = trace.T
        if T == 0:
            self.strip.set_data(None, None)
            self.strip_caption.set_text("Top prediction after each character: the prompt is empty")
            return
        probs = np.asarray(trace.probs, dtype=np.float64)  # (T, V)
        top = probs.argmax(-1)  # (T,)
        nxt = np.full(T, -1, np.int64)
        nxt[:-1] = trace.ids[1:]
        correct = np.where(nxt < 0, -1, (top == nxt).astype(np.int64))
        actual_p = np.where(nxt < 0, np.nan, probs[np.arange(T), np.maximum(nxt, 0)])
        data = StripData(inputs=trace.display_tokens, predicted=[display_char(trace.vocab[i]) for i in top],
                         probs=probs[np.arange(T), top], correct=correct, actual_prob=actual_p,
                         actual=[display_char(trace.vocab[i]) if i >= 0 else "" for i in nxt])
        self.strip.set_data(data, pos)
        n_right = int((correct == 1).sum())
        acc = f"{n_right} of {T - 1} right" if T > 1 else "nothing to compare yet"
        self.strip_caption.set_text(f"Top prediction after each character (p at T = 1): {acc}")

    def _render_lens_data(self) -> None:
        trace = self.trace
        T = trace.T
        nxt = np.full(T, -1, np.int64)
        if T > 1:
            nxt[:-1] = trace.ids[1:]
        display_vocab = [display_char(c) for c in trace.vocab]
        self.lens.show_lens(self._lens_probs, trace.vocab, display_vocab, trace.display_tokens, nxt, trace.n_layer)

    # ---- interaction ---------------------------------------------------------------------------
    def _on_bar_clicked(self, token: int) -> None:
        top = int(np.argmax(self._shown["logits"])) if self._shown else None
        self._linear_token = None if token == top else int(token)
        self._render_distribution()

    def _on_lens_clicked(self, depth: int, pos: int) -> None:
        self.selectionRequested.emit({"layer": EMBED if depth == 0 else depth - 1, "position": int(pos)})

    # ---- theme ---------------------------------------------------------------------------------
    @property
    def _theme(self):
        return palette_theme(self)

    def _apply_theme(self) -> None:
        theme = self._theme
        self.bars.apply_theme(theme)
        self.lens.apply_theme(theme)
        self.strip.update()
        if self.trace is not None:
            self.render()

    def changeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        if ev.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_theme()
        super().changeEvent(ev)

    # ---- export --------------------------------------------------------------------------------
    def export_views(self) -> list[ExportView]:
        s = self._shown
        if s:
            here = display_char(self.trace.tokens[s["pos"]])
            where = f"position {s['pos']} ('{here}')"
            tok = display_char(self.trace.vocab[s["example"].token])
        else:
            where, tok = "empty prompt", "-"
        T = self.trace.T if self.trace is not None else 0
        return [
            ExportView("logits_next_char", self.bars,
                       f"Next-character probabilities after {where} · T = {self.temperature:.2f}"),
            ExportView("logit_lens", self.lens, f"Logit lens · {T} positions · selected {where}"),
            ExportView("predictions_strip", self.strip.columns, f"Top prediction after each character · {T} positions"),
            ExportView("lm_head_linear", self.linear_view, f"lm_head as nn.Linear · {where} · logit of '{tok}'"),
        ]

    def export_data(self) -> dict:
        trace, s = self.trace, self._shown
        if trace is None:
            return {}
        out: dict = {}
        if s:
            rows = []
            for i in s["ids"]:
                rows.append([int(s["ranks"][i]), trace.vocab[i], int(i), float(s["logits"][i]), float(s["probs"][i]),
                             float(s["probs_t1"][i]), float(s["sampling"][i]), bool(s["actual"] == i)])
            out["logits_topk"] = Table(["rank", "char", "id", "logit", f"p_T{self.temperature:.2f}", "p_T1",
                                        "sampling_p", "actual_next"], rows)
            ex = s["example"]
            out["lm_head_decomposition"] = Table(
                ["channel", "x", "W_row", "product"],
                [[c, float(ex.x[c]), float(ex.weight_row[c]), float(ex.decomposition.contributions[c])]
                 for c in range(len(ex.x))])
        d = self.strip.data
        if d is not None:
            out["predictions"] = Table(
                ["position", "input", "predicted", "p", "actual_next", "p_actual", "right"],
                [[i, trace.tokens[i], trace.vocab[int(np.argmax(trace.probs[i]))], float(d.probs[i]),
                  trace.tokens[i + 1] if i + 1 < trace.T else "", float(d.actual_prob[i]),
                  "" if d.correct[i] < 0 else bool(d.correct[i])] for i in range(trace.T)])
        out["logit_lens"] = {
            "logits": np.asarray(trace.logit_lens),  # (L+1, T, V)
            "top_ids": np.asarray(self.lens.top_ids),  # (L+1, T)
            "top_probs": np.asarray(self.lens.top_probs),  # (L+1, T)
            "vocab": np.array(trace.vocab, dtype=str),
            "tokens": np.array(list(trace.tokens), dtype=str),
        }
        return out
