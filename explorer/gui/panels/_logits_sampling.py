"""Sampling for the logits panel: temperature, top-k and top-p in numpy, and the Generate loop.

``sampling_distribution`` follows ``explorer.core.model.sampling_probs`` exactly (divide by T, keep
the k largest logits, softmax, keep the smallest set of most likely tokens whose mass reaches p,
renormalise), so what the panel draws is what the model's own ``generate`` would sample.

``GenerationRun`` drives "Generate N characters" one character at a time: it samples from the last
position of the current trace, asks for the character to be appended (``appendText``), and waits
for the trace of the longer prompt to arrive before sampling the next one, so every view animates.
Its random numbers come from ``numpy.random.default_rng(seed)``: the same seed and prompt give the
same text.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ...core.stats import softmax

if TYPE_CHECKING:  # the panels only read traces; the type is for readers
    from ...core.trace import Trace

TRACE_TIMEOUT_MS = 15000  # give up when the longer prompt's trace does not arrive


def sampling_distribution(logits, temperature: float = 1.0, top_k: int | None = None,
                          top_p: float | None = None) -> np.ndarray:
    """The distribution a character is drawn from, (V,) float64 summing to 1.

    ``top_k`` of None or 0 and ``top_p`` of None or ≥ 1 switch that filter off.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be ≥ 0 (0 = off), got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    z = np.asarray(logits, dtype=np.float64) / temperature  # (V,)
    V = z.shape[-1]
    if top_k and top_k < V:
        kth = np.sort(z)[-top_k]
        z = np.where(z < kth, -np.inf, z)
    p = softmax(z)
    if top_p is not None and 0.0 < top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        sorted_p = p[order]
        before = np.cumsum(sorted_p) - sorted_p  # mass of strictly more likely tokens
        sorted_p = np.where(before >= top_p, 0.0, sorted_p)
        p = np.zeros_like(p)
        p[order] = sorted_p
        p = p / p.sum()
    return p


class GenerationRun(QObject):
    """One press of Generate: ``n`` characters, each sampled from the newest trace's last position.

    Signals: ``appendText(str)`` asks for one character to be appended to the prompt;
    ``progress(done, n)``; ``finished(message)`` once done, stopped or failed.
    """

    appendText = Signal(str)
    progress = Signal(int, int)
    finished = Signal(str)

    def __init__(self, n: int, seed: int, temperature: float, top_k: int | None, top_p: float | None,
                 delay_ms: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if n < 1:
            raise ValueError(f"the number of characters must be ≥ 1, got {n}")
        sampling_distribution(np.zeros(2), temperature, top_k, top_p)  # validate the settings now
        self.n = int(n)
        self.seed = int(seed)
        self.temperature, self.top_k, self.top_p = float(temperature), top_k, top_p
        self.delay_ms = max(0, int(delay_ms))
        self.rng = np.random.default_rng(self.seed)
        self.generated = ""
        self.active = False
        self._expected: str | None = None
        self._trace: Trace | None = None
        self._step_timer = QTimer(self)
        self._step_timer.setSingleShot(True)
        self._step_timer.timeout.connect(self._step)
        self._watchdog = QTimer(self)
        self._watchdog.setSingleShot(True)
        self._watchdog.setInterval(TRACE_TIMEOUT_MS)
        self._watchdog.timeout.connect(lambda: self.stop("stopped: no trace arrived for the appended text"))

    def start(self, trace: Trace) -> None:
        if trace.T == 0:
            raise ValueError("type at least one character: the model needs a context to continue")
        self._trace = trace
        self.active = True
        self._step()

    def sample(self, trace: Trace) -> str:
        """Draw one character from the last position of ``trace`` with this run's settings."""
        p = sampling_distribution(trace.logits[-1], self.temperature, self.top_k, self.top_p)
        return trace.vocab[int(self.rng.choice(p.shape[0], p=p))]

    def _step(self) -> None:
        if not self.active or self._trace is None:
            return
        ch = self.sample(self._trace)
        self.generated += ch
        self._expected = self._trace.text + ch
        self._trace = None
        self.progress.emit(len(self.generated), self.n)
        self._watchdog.start()
        self.appendText.emit(ch)

    def on_trace(self, trace: Trace) -> None:
        """Called with every new trace while running. The trace of the extended prompt continues the
        run; a re-trace of the same text (new weights while training) replaces the pending one; any
        other text means the prompt was edited, which stops the run."""
        if not self.active:
            return
        if self._expected is not None:
            if trace.text != self._expected:
                self.stop("stopped: the prompt was edited")
                return
            self._watchdog.stop()
            self._expected = None
            if len(self.generated) >= self.n:
                self._finish(f"generated {len(self.generated)} characters (seed {self.seed})")
                return
            self._trace = trace
            self._step_timer.start(self.delay_ms)
        elif self._trace is not None and trace.text == self._trace.text:
            self._trace = trace
        else:
            self.stop("stopped: the prompt was edited")

    def stop(self, message: str = "stopped") -> None:
        if self.active:
            self._finish(f"{message} after {len(self.generated)} of {self.n} characters")

    def _finish(self, message: str) -> None:
        self.active = False
        self._step_timer.stop()
        self._watchdog.stop()
        self.finished.emit(message)
