"""Small panels built only for the export tests: a heatmap with a colour bar, a bar chart with text
labels, a scatter of labelled points, and a plain text widget, all through the ``Panel`` contract."""
from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.gui import theme
from explorer.gui.panels.base import ExportView, Panel, Table


CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n")


@functools.lru_cache(maxsize=None)
def shared_model():
    """One small random model (2 layers, 2 heads, 32 dims) for every export test in the process,
    with LayerNorm gains away from 1 so every view has something to show."""
    import torch

    from explorer import ExplorerModel, GPTConfig

    vocab = sorted(set(CORPUS))
    cfg = GPTConfig.lecture(vocab_size=len(vocab), block_size=32, n_layer=2, n_head=2, n_embd=32)
    m = ExplorerModel.untrained(cfg, vocab, seed=0, name="tiny")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in m.module.named_parameters():
            if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return m


class HeatmapPanel(Panel):
    """An attention-like T×T heatmap (ImageItem + ColorBarItem) with character tick labels."""

    title = "Fake heatmap"

    def __init__(self, dark: bool = False) -> None:
        super().__init__()
        t = theme.DARK if dark else theme.LIGHT
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(t.background)
        self.plot = self.glw.addPlot()
        self.plot.setLabel("bottom", "key")
        self.plot.setLabel("left", "query")
        self.plot.setTitle("pattern", color=t.foreground)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setPen(t.foreground)
            self.plot.getAxis(name).setTextPen(t.foreground)
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(theme.HEATMAP_CMAP))
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.number = pg.TextItem("0.50", color="w", anchor=(0.5, 0.5))
        self.plot.addItem(self.number)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.glw)
        self.resize(640, 480)

    def render(self) -> None:
        T = self.trace.T
        rng = np.random.default_rng(0)
        a = np.tril(rng.random((T, T)))
        a /= a.sum(1, keepdims=True)
        self.pattern = a  # (T, T)
        self.image.setImage(a.T, levels=(0, 1))
        self.number.setPos(0.5, 0.5)
        ticks = [(i + 0.5, t) for i, t in enumerate(self.trace.display_tokens)]
        self.plot.getAxis("bottom").setTicks([ticks])
        self.plot.getAxis("left").setTicks([ticks])

    def export_views(self):
        return [ExportView("fake_heatmap", self.glw, f"Fake pattern · head {self.selection.head}")]

    def export_data(self):
        return {"fake_pattern": {"pattern": self.pattern, "tokens": np.array(self.trace.tokens)}}


class BarsPanel(Panel):
    """A top-k bar chart and a caption label, the widget exported being the whole box."""

    title = "Fake bars"

    def __init__(self) -> None:
        super().__init__()
        self.box = QWidget()
        lay = QVBoxLayout(self.box)
        self.caption = QLabel("Top-5 next characters")
        self.plotw = pg.PlotWidget()
        self.plotw.setLabel("left", "probability")
        # bottom axis: tick labels only (no tick marks, no title), so their letters can be measured
        self.plotw.getAxis("bottom").setStyle(tickLength=0)
        self.bars = pg.BarGraphItem(x=np.arange(5), height=np.ones(5), width=0.7, brush=theme.SERIES[0])
        self.plotw.addItem(self.bars)
        self.curve = self.plotw.plot(np.arange(5), np.linspace(0.1, 0.9, 5), pen=pg.mkPen(theme.SERIES[1], width=1),
                                     symbol="o", symbolBrush=theme.SERIES[2])
        lay.addWidget(self.caption)
        lay.addWidget(self.plotw)
        outer = QVBoxLayout(self)
        outer.addWidget(self.box)
        self.resize(500, 400)

    def render(self) -> None:
        p = self.trace.probs[-1]
        top = np.argsort(-p)[:5]
        self.top = top
        self.bars.setOpts(height=p[top])
        self.plotw.getAxis("bottom").setTicks([[(i, self.trace.vocab[t]) for i, t in enumerate(top)]])

    def export_views(self):
        return [ExportView("fake_bars", self.box, "Fake top-5 · position last")]

    def export_data(self):
        p = self.trace.probs[-1]
        return {"fake_topk": Table(["rank", "char", "prob"],
                                   [[i + 1, self.trace.vocab[t], float(p[t])] for i, t in enumerate(self.top)])}


class TextPanel(Panel):
    """A rich-text label only (no pyqtgraph)."""

    title = "Fake text"

    def __init__(self) -> None:
        super().__init__()
        self.label = QLabel()
        self.label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.label)
        self.resize(400, 200)

    def render(self) -> None:
        cells = "".join(f'<span style="background:{theme.SERIES[i % 8]}">{c}</span>'
                        for i, c in enumerate(self.trace.display_tokens))
        self.label.setText(f"<p style='font-size:16pt'>{cells}</p>")

    def export_views(self):
        return [ExportView("fake_text", self.label, "Fake text view")]
