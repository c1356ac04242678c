"""Data export (CSV, NPZ, the whole trace) and figure sets: every file, index.html, names with
spaces and accents, all-or-nothing writes, replacing an earlier set, cancelling."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from explorer.gui.export import (ExportCancelled, ExportError, FigureContext, arrays_npz, data_files,
                                 export_figure_set, save_trace_npz, table_csv, trace_arrays)
from explorer.gui.export_set import destination_state
from explorer.gui.panels.base import Table
from explorer.gui.selection import Selection
from test_export_support import BarsPanel, HeatmapPanel, TextPanel, shared_model

PROMPT = "First Citizen:\nYou are all"


@pytest.fixture(scope="module")
def trace():
    return shared_model().trace(PROMPT)


@pytest.fixture
def panels(qtbot, trace):
    ps = [HeatmapPanel(), BarsPanel(), TextPanel()]
    for p in ps:
        qtbot.addWidget(p)
        p.set_selection(Selection(layer=1, ln_site="blocks.1.ln1", head=1, position=4))
        p.set_trace(trace)
    return ps


def written(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("href", "src", "data") and v and not v.startswith(("http", "#")):
                self.refs.add(unquote(v))


# ---- data -----------------------------------------------------------------------------------
def test_table_csv_round_trips_awkward_cells():
    t = Table(["rank", "char", "prob"], [[1, "\n", 0.5], [2, ",", np.float32(0.25)], [3, '"', float("nan")],
                                          [4, "⏎", np.int64(7)]])
    rows = list(csv.reader(io.StringIO(table_csv(t))))
    assert rows[0] == ["rank", "char", "prob"]
    assert [r[1] for r in rows[1:]] == ["\n", ",", '"', "⏎"]
    assert float(rows[2][2]) == 0.25 and rows[3][2] == "nan" and rows[4][2] == "7"
    with pytest.raises(ExportError, match="row 0 has 2 cells but there are 3 columns"):
        table_csv(Table(["a", "b", "c"], [[1, 2]]))


def test_trace_npz_holds_every_activation_under_its_name(trace, tmp_path):
    path = save_trace_npz(trace, tmp_path / "trace.npz")
    with np.load(path, allow_pickle=False) as z:  # strings stored as unicode arrays, no pickle
        for name, a in trace.acts.items():
            np.testing.assert_array_equal(z[name], a)
        np.testing.assert_array_equal(z["logits"], trace.logits)
        np.testing.assert_array_equal(z["probs"], trace.probs)
        np.testing.assert_array_equal(z["logit_lens"], trace.logit_lens)
        assert "".join(z["tokens"]) == "".join(trace.tokens)
        assert str(z["text"]) == PROMPT and str(z["model_name"]) == "tiny"
        assert z["blocks.1.attn.hook_pattern"].shape == (2, trace.T, trace.T)
        np.testing.assert_allclose(z["blocks.1.attn.hook_pattern"].sum(-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(z["ln_stats.blocks.0.ln2.out_std"], trace.ln_stats["blocks.0.ln2"].out_std)
        assert json.loads(str(z["config_json"]))["n_layer"] == 2
    assert set(trace_arrays(trace)) >= set(trace.acts)


def test_data_files_names_and_types():
    files = data_files({"top k": Table(["a"], [[1]]), "pattern": np.zeros((2, 3)),
                        "bundle": {"x": np.ones(2), "tokens": np.array(["a", "⏎"])}})
    assert set(files) == {"top_k.csv", "pattern.npz", "bundle.npz"}
    z = np.load(io.BytesIO(files["bundle.npz"]), allow_pickle=False)
    assert list(z["tokens"]) == ["a", "⏎"]
    assert np.load(io.BytesIO(files["pattern.npz"]))["pattern"].shape == (2, 3)
    with pytest.raises(ExportError, match="Python objects"):
        arrays_npz({"bad": np.array([object()], dtype=object)})
    with pytest.raises(ExportError, match="expected a Table, an array or a dict"):
        data_files({"odd": 3.5})


# ---- figure sets ----------------------------------------------------------------------------
def test_figure_set_writes_every_view_and_an_index_that_links_them(panels, trace, tmp_path):
    folder = tmp_path / "Figures für Unterricht" / "set one"  # spaces, non-ASCII, a missing parent
    ctx = FigureContext.from_trace(trace, panels[0].selection, projection="PCA")
    result = export_figure_set(panels, folder, ctx, formats="png,svg,pdf", scale=1, command="python -m explorer …")
    files = written(folder)
    for view in ("fake_heatmap", "fake_bars", "fake_text"):
        for ext, magic in (("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")):
            assert (folder / f"{view}.{ext}").read_bytes().startswith(magic)
    assert {"index.html", "figures.json", "data/trace.npz", "data/fake_pattern.npz", "data/fake_topk.csv"} <= files
    assert {p.relative_to(folder).as_posix() for p in result.files} == files
    # index.html references every other file written, and nothing that does not exist
    html = (folder / "index.html").read_text(encoding="utf-8")
    parser = Links()
    parser.feed(html)
    assert parser.refs == files - {"index.html"}
    for text in ("tiny", "First␣Citizen:⏎You␣are␣all", "block 1", "blocks.1.ln1", "Head",
                 "4 ‘t’", "PCA", "python -m explorer"):
        assert text in html, text
    manifest = json.loads((folder / "figures.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == files
    assert manifest["prompt"] == PROMPT and manifest["selection"]["head"] == 1
    assert [f["name"] for f in manifest["figures"]] == ["fake_heatmap", "fake_bars", "fake_text"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_rerunning_replaces_an_earlier_set_but_never_a_foreign_folder(panels, tmp_path):
    folder = tmp_path / "figs"
    export_figure_set(panels, folder, formats="png", scale=1)
    assert destination_state(folder) == "replace"
    (folder / "fake_text.png").unlink()  # the new set is complete again
    export_figure_set(panels[:2], folder, formats="svg", scale=1)
    assert not list(folder.glob("*.png")) and (folder / "fake_bars.svg").exists()
    foreign = tmp_path / "my documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ExportError, match="already holds other files"):
        export_figure_set(panels, foreign, formats="png", scale=1)
    assert written(foreign) == {"thesis.tex"} and (foreign / "thesis.tex").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    export_figure_set(panels[2:], empty, formats="png", scale=1, include_data=False)
    assert written(empty) == {"fake_text.png", "index.html", "figures.json"}


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial" in p.name or p.name.endswith(".old")]


def test_unwritable_destination_gives_one_clear_line_and_writes_nothing(panels, tmp_path, monkeypatch):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(ExportError) as e:
        export_figure_set(panels, blocker / "figs", formats="png", scale=1)
    assert "notes.txt is a file, not a folder" in str(e.value) and "\n" not in str(e.value)
    assert blocker.read_text() == "a file, not a folder"
    with pytest.raises(ExportError, match="exists and is not a folder"):
        export_figure_set(panels, blocker, formats="png", scale=1)
    # a folder we may not write in (tests run as root, where chmod does not stop writes)
    def refuse(*_a, **_k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(ExportError, match=r"cannot write in .*: Permission denied"):
        export_figure_set(panels, tmp_path / "deep" / "er" / "figs", formats="png", scale=1)
    assert not (tmp_path / "deep").exists()  # the parents it created are removed again


def test_a_failure_half_way_leaves_nothing_behind(panels, tmp_path, monkeypatch):
    import explorer.gui.export_set as es

    calls = {"n": 0}
    real = es._write

    def flaky(folder, rel, data, out):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        return real(folder, rel, data, out)
    monkeypatch.setattr(es, "_write", flaky)
    dest = tmp_path / "figs"
    with pytest.raises(ExportError, match="No space left on device"):
        export_figure_set(panels, dest, formats="png,svg", scale=1)
    assert not dest.exists() and leftovers(tmp_path) == []
    # an earlier set in the destination survives a failed replacement untouched
    monkeypatch.setattr(es, "_write", real)
    export_figure_set(panels, dest, formats="png", scale=1)
    before = {p: (dest / p).read_bytes() for p in written(dest)}
    calls["n"] = 0
    monkeypatch.setattr(es, "_write", flaky)
    with pytest.raises(ExportError):
        export_figure_set(panels, dest, formats="svg", scale=1)
    assert {p: (dest / p).read_bytes() for p in written(dest)} == before
    assert leftovers(tmp_path) == []


def test_cancelling_writes_nothing(panels, tmp_path):
    seen = []

    def progress(done, total, what):
        seen.append((done, total, what))
        return done < 2
    with pytest.raises(ExportCancelled):
        export_figure_set(panels, tmp_path / "figs", formats="png,svg", scale=1, progress=progress)
    assert not (tmp_path / "figs").exists() and leftovers(tmp_path) == []
    assert seen[0][1] == 3 * 2 + 4 + 1 and "Fake heatmap" in seen[0][2]


def test_formats_are_checked_before_anything_is_written(panels, tmp_path):
    with pytest.raises(ExportError, match="unknown figure format 'jpg'"):
        export_figure_set(panels, tmp_path / "figs", formats="png,jpg")
    with pytest.raises(ExportError, match="no figure format"):
        export_figure_set(panels, tmp_path / "figs", formats="")
    assert not (tmp_path / "figs").exists()


def test_set_files_are_readable_by_others(panels, tmp_path):
    dest = tmp_path / "figs"
    export_figure_set(panels[2:], dest, formats="png", scale=1, include_data=False)
    mask = os.umask(0)
    os.umask(mask)
    assert (dest.stat().st_mode & 0o777) == 0o755 & ~mask
    assert ((dest / "index.html").stat().st_mode & 0o777) == 0o666 & ~mask


def test_a_broken_panel_costs_only_its_own_figures(panels, qtbot, tmp_path):
    class Broken(TextPanel):
        title = "Broken"

        def export_data(self):
            raise IndexError("index 65 is out of bounds")

        def export_views(self):
            return super().export_views() + [ExportViewFailing("broken_view", self.label, "Broken view")]

    class ExportViewFailing:  # a view whose widget raises while it is measured
        def __init__(self, name, widget, title):
            self.name, self.title = name, title
            self._widget = widget

        @property
        def widget(self):
            raise RuntimeError("wrapped C/C++ object has been deleted")

    broken = Broken()
    qtbot.addWidget(broken)
    broken.set_trace(panels[0].trace)
    result = export_figure_set(panels + [broken], tmp_path / "figs", formats="png", scale=1)
    names = written(tmp_path / "figs")
    assert {"fake_heatmap.png", "fake_bars.png", "fake_text.png", "data/fake_topk.csv"} <= names
    assert "broken_view.png" not in names
    assert len(result.problems) == 2
    assert "Broken: its data could not be exported (IndexError: index 65 is out of bounds)" in result.problems
    assert any("'broken_view' could not be drawn (RuntimeError" in p for p in result.problems)
    html = (tmp_path / "figs" / "index.html").read_text(encoding="utf-8")
    assert html.count("Not included:") == 2
    assert json.loads((tmp_path / "figs" / "figures.json").read_text())["problems"] == result.problems
