"""How long the attention panel (and the logits panel) take to show a new trace: set_trace + a full
synchronous paint.

The model is the lecture's size (6 blocks × 6 heads, n_embd 384, block_size 256), untrained: the
panel's cost depends on the shapes, not on the weights. Traces are recorded first, so only the
panel is timed. For each prompt length the script shows the panel at 1400×900 (offscreen Qt),
feeds it traces of that length (the last character varied, as when typing) and prints the p50 and
p95 of ``set_trace(trace)`` and of ``set_trace`` + ``grab()`` (which paints every view).

    python benchmarks/attention_perf.py [--repeats 20] [--lengths 32,128,256] [--logits]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer import ExplorerModel, GPTConfig  # noqa: E402
from explorer.core.tokenizer import TINY_SHAKESPEARE_VOCAB  # noqa: E402
from explorer.gui.panels.attention import AttentionPanel  # noqa: E402
from explorer.gui.panels.logits import LogitsPanel  # noqa: E402
from explorer.gui.selection import Selection  # noqa: E402

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n") * 4


def percentiles(xs) -> tuple[float, float]:
    a = np.asarray(xs)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="traces per prompt length (default 20)")
    ap.add_argument("--lengths", default="32,128,256", help="prompt lengths, comma-separated")
    ap.add_argument("--logits", action="store_true", help="time the logits panel as well")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    vocab = list(TINY_SHAKESPEARE_VOCAB)
    cfg = GPTConfig.lecture(vocab_size=len(vocab), n_layer=6, n_head=6, n_embd=384, block_size=256)
    model = ExplorerModel.untrained(cfg, vocab)
    print(f"model: {cfg.n_layer} blocks × {cfg.n_head} heads, n_embd {cfg.n_embd}, block_size {cfg.block_size}")
    lengths = [int(s) for s in args.lengths.split(",")]
    letters = "abcdefghij"
    traces = {T: [model.trace(TEXT[: T - 1] + letters[i % len(letters)]) for i in range(args.repeats)]
              for T in lengths}
    panels = [AttentionPanel] + ([LogitsPanel] if args.logits else [])
    for cls in panels:
        panel = cls()
        panel.resize(1400, 900)
        panel.show()
        panel.set_selection(Selection(layer=2, head=3))
        app.processEvents()
        print(f"\n{cls.__name__} at 1400×900")
        print(f"{'T':>5} {'set_trace p50':>14} {'p95':>8} {'+paint p50':>11} {'p95':>8}   (ms)")
        for T in lengths:
            panel.set_trace(traces[T][0])  # the first trace of a new length resizes the axes
            panel.grab()
            only, full = [], []
            for tr in traces[T]:
                t0 = time.perf_counter()
                panel.set_trace(tr)
                t1 = time.perf_counter()
                panel.grab()
                t2 = time.perf_counter()
                only.append((t1 - t0) * 1e3)
                full.append((t2 - t0) * 1e3)
            (a50, a95), (b50, b95) = percentiles(only), percentiles(full)
            print(f"{T:>5} {a50:>14.1f} {a95:>8.1f} {b50:>11.1f} {b95:>8.1f}")
        panel.close()
    app.processEvents()


if __name__ == "__main__":
    main()
