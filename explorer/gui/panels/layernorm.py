"""The LayerNorm panel: what each LayerNorm does to the prompt's vectors, with the real numbers.

A site selector (every block's ln1 and ln2, and ln_f) follows the shared selection. For the
selected site:

* **Per position**: mean and std of every token's vector before (the residual stream) and after
  the LayerNorm (after γ and β), with the prompt's characters on the x axis;
* **γ and β**: the site's learned gain and bias over the channels, the largest |γ| starred;
* **Histogram**: the selected token's input values against its output values, on shared bins;
* **Across depth**: residual std or norm per token at every site, in and out: the residual grows
  through the blocks and every LayerNorm brings it back;
* a **worked example** box: the first channels of the selected token through
  x → μ → σ → (x − μ)/σ → ·γ + β, with ε, and the check against the model's recorded output.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QSpinBox,
                               QSplitter, QTabWidget, QToolButton, QVBoxLayout, QWidget)

from ...core.tokenizer import display_char
from .. import theme as th
from ..selection import Selection
from ._embed_common import ViewFrame, font, theme_for
from ._ln_example import COLUMNS, example_html, worked_example
from ._ln_views import DepthView, GainBiasView, HistogramView, PerPositionView
from .base import ExportView, Panel, Table

POSITION_HELP = (
    "LayerNorm looks at one token's vector at a time. It subtracts the vector's mean μ and divides "
    "by its standard deviation σ (both taken over the n_embd channels), so every token leaves with "
    "mean 0 and std 1, then multiplies by the learned gain γ and adds the bias β. Solid blue: the "
    "vector coming in (the residual stream). Dashed orange: what comes out. However large or "
    "off-centre the input, the output's scale is set by γ and β alone.")
GAIN_HELP = (
    "γ (gain) and β (bias) are LayerNorm's only parameters: one number per channel. After "
    "normalising, channel c is multiplied by γ[c] and shifted by β[c]. γ = 1 and β = 0 would leave "
    "the normalised vector unchanged; training moves them. Stars mark the channels with the largest "
    "|γ|: the directions this LayerNorm amplifies most.")
HIST_HELP = (
    "The selected token's n_embd numbers before (blue) and after (orange) this LayerNorm, counted "
    "into the same bins. The input can sit anywhere and spread widely; the output is re-centred "
    "and rescaled: normalised to mean 0 and std 1, then stretched by γ and shifted by β.")
DEPTH_HELP = (
    "Every LayerNorm in forward order. Solid lines: the std (or length ‖x‖) of the residual "
    "stream entering each LayerNorm, one faint line per token, the selected token bold. Each block "
    "adds its attention and feed-forward output to the residual stream, so its scale tends to grow "
    "with depth. Dashed lines: the LayerNorm's output, which stays at a steady scale set by γ: the "
    "layers after it always see vectors of a familiar size. Click to choose a site.")
EXAMPLE_HELP = (
    "The same computation as torch.nn.LayerNorm, written out for the selected token at the "
    "selected site: μ and σ are taken over all n_embd channels; ε (the model's own value) keeps the "
    "division safe. The normalised vector z has mean 0 and std 1 (a hair under 1, because of ε). "
    "The last line checks these numbers against the output the model recorded.")


def site_layer(site: str, n_layer: int) -> int:
    """The Selection layer a LayerNorm site belongs to: block i → i, ln_final → n_layer."""
    return n_layer if site == "ln_final" else int(site.split(".")[1])


def site_short(site: str) -> str:
    return "ln_f" if site == "ln_final" else f"b{site.split('.')[1]}.{site.rsplit('.', 1)[1]}"


def site_long(site: str) -> str:
    if site == "ln_final":
        return "ln_f (before lm_head)"
    _, i, ln = site.split(".")
    return f"block {i} · {ln} ({'before attention' if ln == 'ln1' else 'before feed-forward'})"


class LayerNormPanel(Panel):
    title = "LayerNorm"
    help_text = POSITION_HELP

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme_for(self)
        self.site: str = self.selection.ln_site
        self._sites: list[str] = []
        self.measure = "std"
        self.example = None
        self.last_render_ms = 0.0
        self._build_ui()

    # ---- UI -------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.site_box = QComboBox()
        self.site_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.site_box.setMinimumContentsLength(14)  # a narrow dock must not be forced wider by it
        self.site_box.setToolTip("Which LayerNorm to look at ([ and ] step through them)")
        self.site_box.activated.connect(lambda i: self.choose_site(self._sites[i]) if 0 <= i < len(self._sites) else None)
        self.prev_button, self.next_button = QToolButton(), QToolButton()
        self.prev_button.setText("◀")
        self.next_button.setText("▶")
        self.prev_button.setToolTip("Previous LayerNorm ([)")
        self.next_button.setToolTip("Next LayerNorm (])")
        self.prev_button.clicked.connect(lambda: self.step_site(-1))
        self.next_button.clicked.connect(lambda: self.step_site(+1))
        self.token_label = QLabel("")
        self.token_label.setFont(font(th.FONT_PT))
        self.token_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.token_label.setToolTip("The selected token: click a position in a plot (or a token "
                                    "chip in the prompt bar) to change it")
        self.site_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.site_box.setMaximumWidth(330)  # room for "block 11 · ln2 (before feed-forward)" when there is room
        bar.addWidget(QLabel("LayerNorm:"))
        bar.addWidget(self.site_box, 2)
        bar.addWidget(self.prev_button)
        bar.addWidget(self.next_button)
        bar.addSpacing(12)
        bar.addWidget(self.token_label, 1)
        root.addLayout(bar)

        t = self.theme
        self.per_position = PerPositionView(t, self._on_position_clicked)
        self.gain_bias = GainBiasView(t, self.channel_text)
        self.histogram = HistogramView(t)
        self.depth = DepthView(t, self.depth_text, self._on_depth_clicked)

        self.tabs = QTabWidget()
        self.position_frame = ViewFrame("Mean and std per position", POSITION_HELP, self.per_position.widget)
        self.gain_frame = ViewFrame("Gain γ and bias β", GAIN_HELP, self.gain_bias.widget)
        self.hist_frame = ViewFrame("Input vs output values", HIST_HELP, self.histogram.widget)
        depth_box = QWidget()
        dl = QVBoxLayout(depth_box)
        dl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.measure_box = QComboBox()
        self.measure_box.addItems(["std over channels", "norm ‖x‖"])
        self.measure_box.setToolTip("Plot each vector's standard deviation or its length")
        self.measure_box.currentIndexChanged.connect(self._on_measure_changed)
        self.log_box = QCheckBox("log scale")
        self.log_box.setToolTip("A logarithmic y axis, for residual streams that grow a lot")
        self.log_box.toggled.connect(self._on_log_toggled)
        row.addWidget(QLabel("measure:"))
        row.addWidget(self.measure_box)
        row.addWidget(self.log_box)
        row.addStretch(1)
        self.depth_frame = ViewFrame("Residual scale at every LayerNorm", DEPTH_HELP, self.depth.widget)
        dl.addWidget(self.depth_frame, 1)
        dl.addLayout(row)
        for frame, name in ((self.position_frame, "Per &position"), (self.gain_frame, "&γ and β"),
                            (self.hist_frame, "&Histogram"), (depth_box, "Across &depth")):
            self.tabs.addTab(frame, name)
        self._views = {self.position_frame: "positions", self.gain_frame: "gain", self.hist_frame: "hist",
                       depth_box: "depth"}
        self.tabs.currentChanged.connect(lambda _i: self.render())  # hidden tabs catch up when shown

        ex = QWidget()
        el = QVBoxLayout(ex)
        el.setContentsMargins(0, 0, 0, 0)
        chan_row = QHBoxLayout()
        self.channels = QSpinBox(minimum=1, maximum=64, value=6)
        self.channels.setToolTip("How many channels the worked example lists")
        self.channels.valueChanged.connect(lambda _v: self._sync_example())
        chan_row.addWidget(QLabel("channels shown:"))
        chan_row.addWidget(self.channels)
        chan_row.addStretch(1)
        self.example_label = QLabel("")
        self.example_label.setTextFormat(Qt.TextFormat.RichText)
        self.example_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.example_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.example_label.setMargin(6)
        self.example_label.setWordWrap(True)
        self.example_label.setAutoFillBackground(True)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.example_label)
        self.example_frame = ViewFrame("Worked example", EXAMPLE_HELP, scroll)
        el.addWidget(self.example_frame, 1)
        el.addLayout(chan_row)

        self.example_box = ex
        self._compact = False
        self.split = split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(ex)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 420])  # the worked example needs room for its seven columns
        root.addWidget(split, 1)
        for seq, fn in (("[", lambda: self.step_site(-1)), ("]", lambda: self.step_site(+1))):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)
        self._apply_example_palette()

    def apply_theme(self, theme: th.Theme) -> None:
        """Colours for a light or dark background (also used to force the light theme on export)."""
        self.theme = theme
        for v in (self.per_position, self.gain_bias, self.histogram, self.depth):
            v.apply_theme(theme)
        self._apply_example_palette()
        if self.trace is not None:
            self.render()

    COMPACT_BELOW = 760  # px: narrower than this, the worked example becomes a tab

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(ev)
        self._set_compact(self.width() < self.COMPACT_BELOW)

    def _set_compact(self, compact: bool) -> None:
        if compact == self._compact:
            return
        self._compact = compact
        if compact:
            self.tabs.addTab(self.example_box, "Worked &example")
        else:
            self.tabs.removeTab(self.tabs.indexOf(self.example_box))
            self.split.addWidget(self.example_box)
            self.example_box.show()
            self.split.setSizes([600, 420])

    def _apply_example_palette(self) -> None:
        self.example_label.setStyleSheet(
            f"QLabel {{ background: {self.theme.background}; color: {self.theme.foreground}; }}")

    def changeEvent(self, ev: QEvent) -> None:  # noqa: N802 (Qt's name)
        if ev.type() == QEvent.Type.PaletteChange:
            t = theme_for(self)
            if t is not self.theme:
                self.apply_theme(t)
        super().changeEvent(ev)

    # ---- site selection ---------------------------------------------------------------------------
    def _resolve_site(self, sel: Selection) -> str:
        sites = self._sites
        if sel.ln_site in sites:
            return sel.ln_site
        if self.trace is not None and sel.layer >= self.trace.n_layer and "ln_final" in sites:
            return "ln_final"
        if self.trace is not None and sel.layer >= 0 and f"blocks.{sel.layer}.ln1" in sites:
            return f"blocks.{sel.layer}.ln1"
        return sites[0] if sites else sel.ln_site

    def choose_site(self, site: str) -> None:
        """The user picked a site here: show it and ask every panel to follow."""
        if self.trace is None or site not in self._sites:
            return
        layer = site_layer(site, self.trace.n_layer)
        self.set_selection(self.selection.with_changes(ln_site=site, layer=layer))
        self.selectionRequested.emit({"ln_site": site, "layer": layer})

    def step_site(self, delta: int) -> None:
        if not self._sites:
            return
        i = self._sites.index(self.site) if self.site in self._sites else 0
        self.choose_site(self._sites[max(0, min(len(self._sites) - 1, i + delta))])

    def _on_position_clicked(self, p: int) -> None:
        if self.trace is None or not 0 <= p < self.trace.T:
            return
        self.set_selection(self.selection.with_changes(position=p))
        self.selectionRequested.emit({"position": p})

    def _on_depth_clicked(self, k: int) -> None:
        if 0 <= k < len(self._sites):
            self.choose_site(self._sites[k])

    def _on_log_toggled(self, on: bool) -> None:
        self.depth.plot.setLogMode(y=on)
        self.render()

    def _on_measure_changed(self, index: int) -> None:
        self.measure = "norm" if index == 1 else "std"
        self.render()

    # ---- render -----------------------------------------------------------------------------------
    def render(self, views=None) -> None:
        """Update the visible tab's view (or ``views``) and the worked example; hidden tabs catch
        up when shown."""
        tr = self.trace
        if tr is None:
            return
        t0 = time.perf_counter()
        sites = list(tr.ln_sites)
        if sites != self._sites:
            self._sites = sites
            self.site_box.blockSignals(True)
            self.site_box.clear()
            self.site_box.addItems([site_long(s) for s in sites])
            self.site_box.blockSignals(False)
        self.site = self._resolve_site(self.selection)
        self.site_box.blockSignals(True)
        self.site_box.setCurrentIndex(sites.index(self.site))
        self.site_box.blockSignals(False)
        self.channels.setMaximum(max(1, tr.config.n_embd))
        st = tr.ln_stats[self.site]
        pos = self.selection.resolved_position(tr.T)
        need = set(views) if views is not None else {self._views.get(self.tabs.currentWidget(), "positions")}
        if "positions" in need:
            self.per_position.update(tr.display_tokens, st.in_mean, st.in_std, st.out_mean, st.out_std, pos)
        if "gain" in need or not self.gain_bias.marked:
            self.gain_bias.update(st.gain, st.bias)  # also names the starred channels in the caption
        if "hist" in need:
            if pos is not None:
                self.histogram.update(np.asarray(tr.ln_input(self.site)[pos]), np.asarray(self._output(self.site)[pos]))
            else:
                self.histogram.update(None, None)
        if "depth" in need:
            self._sync_depth(pos)
        self._sync_example()  # the side box is always on screen (or a tab in a narrow dock: cheap anyway)
        self._sync_captions(pos)
        self.last_render_ms = (time.perf_counter() - t0) * 1000.0

    def refresh_all(self) -> None:
        """Bring every view up to date, visible or not (before an export)."""
        self.render(views=("positions", "gain", "hist", "depth"))

    def _output(self, site: str) -> np.ndarray:
        return self.trace.acts[f"{site}.hook_normalized"]  # (T, C)

    def depth_series(self) -> tuple[np.ndarray, np.ndarray]:
        """(S, T) input and output measures at every site, for the current measure."""
        tr = self.trace
        if self.measure == "std":
            ins = np.stack([tr.ln_stats[s].in_std for s in self._sites])
            outs = np.stack([tr.ln_stats[s].out_std for s in self._sites])
        else:
            ins = np.stack([tr.ln_stats[s].in_norm for s in self._sites])
            outs = np.stack([np.linalg.norm(self._output(s), axis=-1) for s in self._sites])
        return ins.astype(np.float64), outs.astype(np.float64)

    def _sync_depth(self, pos: int | None) -> None:
        ins, outs = self.depth_series()
        self.depth.update([site_short(s) for s in self._sites], ins, outs, pos, self._sites.index(self.site))
        self.depth.set_measure_label("std over channels" if self.measure == "std" else "norm ‖x‖")

    def _sync_example(self) -> None:
        tr = self.trace
        if tr is None:
            return
        pos = self.selection.resolved_position(tr.T)
        if pos is None:
            self.example = None
            self.example_label.setText(
                f"<div style='font-size:{th.FONT_PT}pt'>The prompt is empty: there is no token to "
                f"normalise. Type something.</div>")
            return
        st = tr.ln_stats[self.site]
        self.example = worked_example(tr.ln_input(self.site)[pos], st.gain, st.bias, st.eps,
                                      recorded=self._output(self.site)[pos])
        heading = f"{site_long(self.site)} · token ‘{_esc(display_char(tr.tokens[pos]))}’ at position {pos}"
        accent = th.OKABE_ITO["vermillion"] if self.theme.name == "light" else self.theme.accent
        self.example_label.setText(example_html(self.example, self.channels.value(), heading,
                                                self.theme.foreground, accent, th.FONT_PT))

    def _sync_captions(self, pos: int | None) -> None:
        tr = self.trace
        tok = f"token ‘{display_char(tr.tokens[pos])}’ (position {pos})" if pos is not None else "no token"
        short = f"‘{display_char(tr.tokens[pos])}’ @{pos}" if pos is not None else "no token"
        name = site_short(self.site)
        self.token_label.setText(f"selected: {tok}")
        self.position_frame.caption.set_text(f"{name}: mean and std per token · solid = in, dashed = out")
        self.gain_frame.caption.set_text(
            f"{name}: γ and β per channel · ★ largest |γ|: {', '.join(str(c) for c in self.gain_bias.marked)}")
        self.hist_frame.caption.set_text(f"{name}: values of {short}, in vs out")
        self.depth_frame.caption.set_text(
            f"Residual {'std' if self.measure == 'std' else 'norm'} at every LayerNorm · bold = {short}")

    # ---- tooltips ---------------------------------------------------------------------------------
    def channel_text(self, c: int) -> str:
        st = self.trace.ln_stats[self.site]
        marked = self.gain_bias.marked
        rank = f"\n★ number {marked.index(c) + 1} by |γ|" if c in marked else ""
        return f"channel {c}\nγ = {st.gain[c]:.4f}\nβ = {st.bias[c]:.4f}{rank}"

    def depth_text(self, k: int) -> str:
        S = len(self._sites)
        side = "input" if k < S else "output"
        s = k % S
        pos = self.selection.resolved_position(self.trace.T)
        ins, outs = self.depth.series.get("in"), self.depth.series.get("out")
        v = (ins if k < S else outs)[s, pos]
        what = "std" if self.measure == "std" else "‖x‖"
        return (f"{site_long(self._sites[s])}\n{side} {what} = {v:.4f}\n"
                f"token ‘{display_char(self.trace.tokens[pos])}’ (position {pos})")

    # ---- export -----------------------------------------------------------------------------------
    def export_views(self) -> list[ExportView]:
        self.refresh_all()
        tr = self.trace
        name = site_long(self.site)
        model = f" · {tr.model_name}" if tr is not None else ""
        tok = ""
        if tr is not None:
            pos = self.selection.resolved_position(tr.T)
            tok = f" · token ‘{display_char(tr.tokens[pos])}’ (position {pos})" if pos is not None else " · empty prompt"
        return [
            ExportView("layernorm_positions", self.per_position.widget,
                       f"LayerNorm {name} · mean and std per position{model}"),
            ExportView("layernorm_gain_bias", self.gain_bias.widget, f"LayerNorm {name} · gain γ and bias β{model}"),
            ExportView("layernorm_histogram", self.histogram.widget, f"LayerNorm {name} · input vs output{tok}{model}"),
            ExportView("layernorm_depth", self.depth.widget,
                       f"Residual {self.measure} at every LayerNorm{tok}{model}"),
            ExportView("layernorm_example", self.example_label, f"LayerNorm {name} · worked example{tok}{model}"),
        ]

    def export_settings(self) -> dict[str, str]:
        """What the figures depend on besides the trace and the selection."""
        return {"LayerNorm": self.site, "depth measure": "std" if self.measure == "std" else "norm",
                "worked example channels": str(self.channels.value())}

    def export_data(self) -> dict:
        self.refresh_all()
        tr = self.trace
        if tr is None:
            return {}
        rows = []
        for s in self._sites:
            st = tr.ln_stats[s]
            for p in range(tr.T):
                rows.append([s, p, tr.tokens[p], float(st.in_mean[p]), float(st.in_std[p]), float(st.in_norm[p]),
                             float(st.out_mean[p]), float(st.out_std[p])])
        st = tr.ln_stats[self.site]
        out = {
            "layernorm_stats": Table(["site", "position", "char", "in_mean", "in_std", "in_norm", "out_mean",
                                      "out_std"], rows),
            "layernorm_gain_bias": Table(["site", "channel", "gain", "bias"],
                                         [[self.site, c, float(g), float(b)] for c, (g, b) in
                                          enumerate(zip(st.gain, st.bias))]),
        }
        if self.example is not None:
            ex = self.example.ex
            out["layernorm_example"] = Table(
                COLUMNS + ["recorded y"],
                [r + [float(self.example.recorded[r[0]])] for r in self.example.rows()]
                + [["mean", ex.mean, "", ex.normalized_mean, "", "", "", ""],
                   ["std √(σ²+ε)", ex.std, "", ex.normalized_std, "", "", "", ""],
                   ["eps", ex.eps, "", "", "", "", "", ""]])
        ins, outs = self.depth_series()
        out["layernorm_arrays"] = {
            "sites": np.asarray(self._sites), "tokens": np.asarray(tr.tokens, dtype=str),
            "in_mean": np.stack([tr.ln_stats[s].in_mean for s in self._sites]),
            "in_std": np.stack([tr.ln_stats[s].in_std for s in self._sites]),
            "in_norm": np.stack([tr.ln_stats[s].in_norm for s in self._sites]),
            "out_mean": np.stack([tr.ln_stats[s].out_mean for s in self._sites]),
            "out_std": np.stack([tr.ln_stats[s].out_std for s in self._sites]),
            "gain": np.stack([tr.ln_stats[s].gain for s in self._sites]),
            "bias": np.stack([tr.ln_stats[s].bias for s in self._sites]),
            f"depth_in_{self.measure}": ins, f"depth_out_{self.measure}": outs,
        }
        return out


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

