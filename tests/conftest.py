"""Shared fixtures: small models and corpora made inside the tests (no downloads, no ../shared)."""
from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

SMALL_CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    "All:\nResolved. resolved.\n\nFirst Citizen:\nFirst, you know Caius Marcius is chief enemy to the people.\n"
) * 20


def randomize(module, seed: int = 0, scale: float = 0.3) -> None:
    """Non-trivial weights: everything random, LayerNorm gains away from 1, biases non-zero."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g))


def pytest_configure(config) -> None:
    """Torch on one thread for the whole suite: the test models are tiny, so a second thread buys
    nothing, and on a busy 2-core machine OpenMP's waiting threads made a 2-layer trace take seconds
    instead of milliseconds (and GUI tests that wait for a trace time out)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _collect_gui_garbage_in_the_main_thread(request):
    """After each GUI test, collect its garbage here, in the main thread. Otherwise Python's cyclic
    collector may run later inside a worker thread (the trace thread allocates a lot) and destroy
    a previous test's Qt widgets there, which crashes Qt (seen as a segfault in a worker)."""
    yield
    if "gui" in request.node.path.parts:
        gc.collect()
        if not _GC_FROZEN:  # what is alive now (modules, torch, Qt bindings) is never garbage: stop
            gc.freeze()  # scanning it, which makes each later collection ~10x quicker
            _GC_FROZEN.append(True)


_GC_FROZEN: list[bool] = []


@pytest.fixture
def corpus_text() -> str:
    return SMALL_CORPUS


@pytest.fixture
def corpus_file(tmp_path, corpus_text):
    p = tmp_path / "corpus.txt"
    p.write_text(corpus_text, encoding="utf-8")
    return p


@pytest.fixture
def tiny_model(corpus_text):
    """An ExplorerModel (lecture family, 2 layers, 2 heads, 32 dims, block 32) with random weights."""
    from explorer import ExplorerModel, GPTConfig

    vocab = sorted(set(corpus_text))
    cfg = GPTConfig.lecture(vocab_size=len(vocab), block_size=32, n_layer=2, n_head=2, n_embd=32)
    m = ExplorerModel.untrained(cfg, vocab, seed=0, name="tiny")
    randomize(m.module, seed=1)
    return m
