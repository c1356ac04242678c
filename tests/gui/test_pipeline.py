"""The live prompt → trace pipeline: every edit is traced off the GUI thread, stale results are
dropped, bursts coalesce, selections never re-run the model, and awkward prompts are shown
truthfully on the token chips."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

from explorer.gui.panels.base import Panel
from explorer.gui.prompt_bar import MAX_CHIPS, SHOWN_CROPPED, make_chips
from explorer.gui.selection import Selection


class RecordingPanel(Panel):
    """A panel that keeps everything the window sends it."""

    title = "Recorder"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.traces = []
        self.selections = []

    def set_trace(self, trace) -> None:
        self.traces.append(trace)
        super().set_trace(trace)

    def set_selection(self, sel) -> None:
        self.selections.append(sel)
        super().set_selection(sel)


def add_recorder_named(window, name: str) -> RecordingPanel:
    rec = RecordingPanel()
    window.add_panel(name, rec)
    return rec


def add_recorder(window) -> RecordingPanel:
    return add_recorder_named(window, "dock_recorder")


@pytest.fixture
def recorder(window, synced):
    """A recording panel in a window with every installed analysis panel (caught up, then cleared)."""
    rec = add_recorder(window)
    synced(window)
    rec.traces.clear()
    rec.selections.clear()
    return rec


@pytest.fixture
def light(light_window, synced):
    """A window with only the app's own panels, plus a recording panel (caught up, then cleared)."""
    rec = add_recorder(light_window)
    synced(light_window)
    rec.traces.clear()
    rec.selections.clear()
    return light_window, rec


def test_typing_updates_the_trace_every_panel_sees(window, recorder, qtbot, synced):
    edit = window.prompt_bar.edit
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.keyClicks(edit, "First")
    qtbot.waitUntil(lambda: bool(recorder.traces) and recorder.traces[-1].text == "First Citizen:\nBefore\nFirst", timeout=20000)
    trace = window.controller.trace
    assert trace is recorder.traces[-1]
    assert "".join(trace.tokens) == "First Citizen:\nBefore\nFirst"
    gens = [t.gen for t in recorder.traces]
    assert gens == sorted(gens) and len(set(gens)) == len(gens)
    panels = synced(window)
    assert set(panels) >= {"dock_architecture", "dock_recorder"}
    for name, panel in panels.items():
        assert panel.trace is trace, name
    # what the user sees: the chips and the status bar follow the new prompt
    assert window.prompt_bar.chips.n_tokens == trace.T
    assert window.status_labels["trace"].text() == f"trace {trace.elapsed_ms:.0f} ms"


def test_of_three_rapid_edits_only_the_last_is_rendered(window, recorder, qtbot, synced):
    c, worker = window.controller, window.controller.worker
    skipped0, dropped0, traced0 = worker.n_skipped, c.n_dropped, worker.n_traced
    for text in ("First", "First Ci", "First Citizen"):  # no event processing in between
        window.prompt_bar.set_text(text)
    qtbot.waitUntil(lambda: bool(recorder.traces), timeout=20000)
    qtbot.wait(300)  # anything stale still on its way would arrive now
    assert [t.text for t in recorder.traces] == ["First Citizen"]
    assert recorder.traces[0].gen == c.gen
    stale = (worker.n_skipped - skipped0) + (c.n_dropped - dropped0)
    assert stale == 2  # each older edit was skipped by the worker or dropped by the controller
    assert worker.n_traced - traced0 <= 3
    for name, panel in synced(window).items():
        assert panel.trace.text == "First Citizen", name


def test_a_burst_of_keystrokes_costs_few_forward_passes(light, qtbot):
    window, recorder = light
    worker = window.controller.worker
    model = worker.model
    original = model.trace

    def slow_trace(text):
        time.sleep(0.15)
        return original(text)

    model.trace = slow_trace
    try:
        traced0 = worker.n_traced
        qtbot.keyClicks(window.prompt_bar.edit, "abcdefghij")  # ten edits while the worker is busy
        qtbot.waitUntil(lambda: bool(recorder.traces) and recorder.traces[-1].text.endswith("abcdefghij"), timeout=20000)
    finally:
        model.trace = original
    assert worker.n_traced - traced0 <= 3
    assert recorder.traces[-1].text == "First Citizen:\nBeforeabcdefghij"


def test_the_gui_thread_never_runs_a_forward_pass(light_window, qtbot):
    window = light_window
    module = window.controller.worker.model.module
    threads = []
    originals = {name: getattr(module, name) for name in ("forward", "record")}  # the plain and the recorded pass

    def spying(original):
        def spy(*args, **kwargs):
            threads.append(threading.current_thread())
            return original(*args, **kwargs)
        return spy

    for name, original in originals.items():
        setattr(module, name, spying(original))
    try:
        with qtbot.waitSignal(window.controller.traceChanged, timeout=20000):
            qtbot.keyClicks(window.prompt_bar.edit, "!")
        window.controller.select(layer=1, head=1, position=2)
    finally:
        for name in originals:
            delattr(module, name)
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_a_selection_change_reaches_every_panel_without_a_new_trace(window, recorder, qtbot, synced):
    c = window.controller
    trace, traced0 = c.trace, c.worker.n_traced
    gen0 = c.gen
    with qtbot.waitSignal(c.selectionChanged, timeout=1000) as sig:
        c.select(layer=1, head=1, position=3)
    sel = sig.args[0]
    assert sel == Selection(layer=1, ln_site="blocks.1.ln1", head=1, position=3)
    for name, panel in synced(window).items():
        assert panel.selection == sel, name
        assert panel.trace is trace, name
    assert recorder.selections == [sel] and recorder.traces == []
    qtbot.wait(200)
    assert c.worker.n_traced == traced0 and c.gen == gen0 and c.trace is trace
    assert "block 1 · head 1" in window.status_labels["selection"].text()
    assert window.prompt_bar.strip.selected == 3


def test_selection_values_are_checked_against_the_model(light_window):
    window = light_window
    c = window.controller
    T = c.trace.T
    assert c.select(layer=99).layer == 2  # n_layer: ln_f / lm_head
    assert c.selection.ln_site == "ln_final"
    assert c.select(layer=-5).layer == -1
    assert c.select(head=7).head == 1
    assert c.select(position=1000).position == T - 1
    assert c.select(ln_site="blocks.1.ln2").layer == 1
    assert c.select(ln_site="no.such.site").ln_site == "blocks.1.ln2"
    with pytest.raises(ValueError, match="unknown selection keys"):
        c.select(colour="red")


def test_clicking_a_token_chip_selects_its_position_everywhere(light, qtbot, synced):
    window, recorder = light
    strip = window.prompt_bar.strip
    k = next(i for i, chip in enumerate(strip.model.chips) if chip.position == 3)
    with qtbot.waitSignal(window.controller.selectionChanged, timeout=2000):
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.chip_rect(k).center())
    assert window.controller.selection.position == 3 and strip.selected == 3
    synced(window)
    assert recorder.selections[-1].position == 3


def test_a_panel_can_append_text_to_the_prompt(light, qtbot, synced):
    window, recorder = light
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000):
        recorder.appendTextRequested.emit("ab")
    assert window.prompt_bar.text() == "First Citizen:\nBeforeab"
    synced(window)
    assert recorder.traces[-1].text == "First Citizen:\nBeforeab"


def test_unicode_prompts_mark_unknown_characters(window, recorder, qtbot, synced):
    text = "ROMEO: Grüß 🙂\n世界 é"
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000) as sig:
        window.prompt_bar.set_text(text)
    trace = sig.args[0]
    vocab = set(trace.vocab)
    unknown = [(i, ch) for i, ch in enumerate(text) if ch not in vocab]
    assert list(trace.unknown) == unknown and len(unknown) >= 5
    assert "".join(trace.tokens) == "".join(ch for ch in text if ch in vocab)
    chips = window.prompt_bar.strip.model.chips
    marked = [(c.index, c.char) for c in chips if c.state == "unknown"]
    assert marked == unknown
    tip = window.prompt_bar.strip._tooltip(next(c for c in chips if c.char == "🙂"))
    assert "not in this model's vocabulary" in tip and "U+1F642" in tip
    assert f"{len(unknown)} unknown characters left out" in window.prompt_bar.notice.text()
    for name, panel in synced(window).items():
        assert panel.trace is trace, name
    assert "panel" not in window.statusBar().currentMessage()


def test_an_over_long_prompt_is_cropped_to_block_size_and_says_so(window, recorder, qtbot, corpus_text, synced):
    block = window.controller.model_info.config.block_size
    text = corpus_text[: 3 * block + 5]
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000) as sig:
        window.prompt_bar.set_text(text)
    trace = sig.args[0]
    assert trace.T == block and trace.cropped == len(text) - block
    assert "".join(trace.tokens) == text[-block:]
    bar = window.prompt_bar
    ok = [c for c in bar.strip.model.chips if c.state == "ok"]
    assert [c.position for c in ok] == list(range(block))
    assert "".join(c.char for c in ok) == text[-block:]
    assert sum(c.state == "cropped" for c in bar.strip.model.chips) == SHOWN_CROPPED
    assert f"the first {len(text) - block} known characters" in bar.notice.text()
    for name, panel in synced(window).items():
        assert panel.trace is trace, name


def test_an_empty_prompt_gives_an_empty_trace(window, recorder, qtbot, synced):
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000) as sig:
        window.prompt_bar.set_text("")
    assert sig.args[0].T == 0
    assert "T = 0" in window.prompt_bar.notice.text()
    for name, panel in synced(window).items():
        assert panel.trace is sig.args[0], name


def test_a_huge_paste_stays_responsive(light, qtbot, corpus_text):
    window, recorder = light
    text = (corpus_text * 200)[:200_000]
    t0 = time.perf_counter()
    window.prompt_bar.set_text(text)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0  # the text field, the chips and the notice for 200,000 characters
    assert len(window.prompt_bar.strip.model.chips) <= MAX_CHIPS + SHOWN_CROPPED + 2
    qtbot.waitUntil(lambda: bool(recorder.traces) and recorder.traces[-1].text == text, timeout=20000)
    assert recorder.traces[-1].T == window.controller.model_info.config.block_size


def test_make_chips_follows_the_tracers_rules():
    stoi = {c: i for i, c in enumerate("ab \n")}
    m = make_chips("ab?a\nb", stoi, block_size=3)
    # known: a b a \n b (5) → cropped 2 → traced "a\nb" at text indices 3, 4, 5
    assert (m.n_tokens, m.n_unknown, m.n_cropped) == (3, 1, 2)
    ok = [(c.index, c.position, c.label) for c in m.chips if c.state == "ok"]
    assert ok == [(3, 0, "a"), (4, 1, "⏎"), (5, 2, "b")]
    assert [c.char for c in m.chips if c.state == "cropped"] == ["a", "b"]
    assert [c.char for c in m.chips if c.state == "unknown"] == []  # the '?' lies in the cropped part
    m2 = make_chips("a?b", stoi, block_size=8)
    assert [(c.char, c.state, c.position) for c in m2.chips] == [("a", "ok", 0), ("?", "unknown", None), ("b", "ok", 1)]
    assert np.array_equal([c.index for c in m2.chips], [0, 1, 2])


def test_a_slow_panel_lets_the_event_loop_run_before_the_next(light, qtbot, synced):
    window, first = light
    second = add_recorder_named(window, "dock_recorder2")
    synced(window)
    order = []

    def slow(t, _f=first.set_trace):
        order.append("first")
        _f(t)
        QTimer.singleShot(0, lambda: order.append("event"))
        time.sleep(0.03)  # longer than the sync's frame budget

    first.set_trace = slow
    second.set_trace = lambda t, _f=second.set_trace: (order.append("second"), _f(t))
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000):
        window.prompt_bar.set_text("First C")
    synced(window)
    # an event posted while the slow panel rendered ran before the next panel got its turn
    assert window.sync.budget_ms < 30
    assert order.index("first") < order.index("event") < order.index("second")


def test_visible_panels_are_served_before_hidden_ones(light, qtbot, synced):
    window, recorder = light
    hidden = add_recorder_named(window, "dock_hidden")
    window.docks["dock_hidden"].close()
    synced(window)
    order = []
    for rec, name in ((recorder, "visible"), (hidden, "hidden")):
        rec.set_trace = lambda t, _f=rec.set_trace, _n=name: (order.append(_n), _f(t))
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000):
        window.prompt_bar.set_text("First C")
    synced(window)
    assert order == ["visible", "hidden"]  # the closed dock still gets it, after the visible one
    assert hidden.traces[-1] is window.controller.trace


def test_a_selection_reaches_every_panel_at_once(light, qtbot, synced):
    window, recorder = light
    window.controller.select(head=1, position=2)  # no event loop turn needed
    assert recorder.selection.head == 1 and recorder.selections[-1].position == 2
    assert window.architecture.selection.head == 1


def test_a_failing_panel_does_not_stop_the_others(light, qtbot, synced):
    window, recorder = light

    class Broken(RecordingPanel):
        def set_trace(self, trace):
            raise RuntimeError("broken on purpose")

    window.add_panel("dock_broken", Broken())
    with qtbot.waitSignal(window.controller.traceChanged, timeout=20000):
        window.prompt_bar.set_text("First Ci")
    synced(window)
    assert recorder.traces[-1].text == "First Ci"
    assert "broken on purpose" in window.statusBar().currentMessage()


def test_a_new_models_first_trace_comes_with_a_selection_made_for_it(light, qtbot, tmp_path, synced):
    from explorer import ExplorerModel, GPTConfig

    window, recorder = light
    seen = []
    original = recorder.set_trace
    recorder.set_trace = lambda t: (seen.append((t.n_layer, recorder.selection.layer)), original(t))
    window.controller.select(layer=2)  # ln_f / lm_head of the 2-layer model
    synced(window)
    vocab = sorted(set("First Citizen:\nBefore"))
    cfg = GPTConfig.lecture(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=1, n_embd=8)
    path = tmp_path / "one_layer.safetensors"
    ExplorerModel.untrained(cfg, vocab).save(path)
    window.open_path(str(path))
    qtbot.waitUntil(lambda: bool(seen) and seen[-1][0] == 1, timeout=20000)
    assert seen[-1] == (1, 1)  # the 1-layer model's trace is drawn with layer 1 = its ln_f / lm_head


