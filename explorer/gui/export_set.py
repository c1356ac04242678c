"""Figure sets: every panel's current views, in the chosen formats, in one folder with ``index.html``.

``export_figure_set(panels, folder, context, formats=("png", "svg"), scale=2)`` writes::

    folder/
      index.html            one page showing every figure, with the model, prompt and settings
      figures.json          the same as data: files, settings, and the command that remakes the set
      attention_heatmap.png attention_heatmap.svg …          one file per view and format
      data/trace.npz        every activation under its TransformerLens name, logits, probs, lens
      data/logits_topk.csv  data/attention_block1.npz …      each panel's export_data()

It is written all-or-nothing: everything is rendered into a temporary folder beside the
destination (``.NAME.<random>.partial``) and moved into place at the end. If anything fails (a folder
that cannot be created or written, a full disk, a cancelled progress dialog) the temporary folder
is removed, the destination is left as it was, and ``ExportError`` says why in one line.

An existing destination is replaced only when it is empty or is itself a figure set (it has a
``figures.json`` and nothing else but the files listed there), so rerunning the same export
updates it, while a folder holding anything else is never touched.
"""
from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import quote

from .export_data import data_files, describe, safe_name, trace_npz
from .export_render import (FIGURE_FORMATS, DEFAULT_SCALE, ExportError, FigureContext, layout_figure,
                            raster_scale, render_format, visible)

INDEX = "index.html"
MANIFEST = "figures.json"
DATA_DIR = "data"
GENERATOR = "GPT Explorer"

Progress = Callable[[int, int, str], Any]  # (done, total, what) -> False to cancel


class ExportCancelled(ExportError):
    """The user cancelled a figure set; nothing was written."""


@dataclass
class FigureEntry:
    panel: str
    name: str
    title: str
    files: dict[str, str] = field(default_factory=dict)  # format -> path relative to the set's folder
    size: tuple[int, int] = (0, 0)  # logical (width, height) of the figure, header included
    png_size: tuple[int, int] | None = None


@dataclass
class FigureSetResult:
    folder: Path
    files: list[Path]  # every file written (absolute), index.html and figures.json included
    figures: list[FigureEntry]
    data: list[tuple[str, str]]  # (path relative to folder, description)
    problems: list[str] = field(default_factory=list)  # views or data a panel failed to give (skipped)

    @property
    def index(self) -> Path:
        return self.folder / INDEX


def panel_label(panel) -> str:
    return str(getattr(panel, "title", "") or type(panel).__name__)


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """``"png,svg"`` or ``["PNG", "pdf"]`` → ``("png", "svg")``; unknown names raise ExportError."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for f in items:
        f = str(f).strip().lower().lstrip(".")
        if not f:
            continue
        if f not in FIGURE_FORMATS:
            raise ExportError(f"unknown figure format {f!r}: choose from {', '.join(FIGURE_FORMATS)}")
        if f not in out:
            out.append(f)
    if not out:
        raise ExportError(f"no figure format chosen: choose from {', '.join(FIGURE_FORMATS)}")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# the destination folder
# ---------------------------------------------------------------------------------------------
def _why(e: OSError) -> str:
    return e.strerror or str(e)


def _listing(folder: Path) -> tuple[set[str], set[str]]:
    files, dirs = set(), set()
    for root, dnames, fnames in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for d in dnames:
            dirs.add((rel / d).as_posix())
        for f in fnames:
            files.add((rel / f).as_posix())
    return files, dirs


def destination_state(dest: Path) -> str:
    """``"new"``, ``"empty"`` or ``"replace"`` (an earlier figure set); raise ExportError for a
    destination that must not be touched."""
    if not dest.exists():
        return "new"
    if not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a folder")
    try:
        entries = list(dest.iterdir())
    except OSError as e:
        raise ExportError(f"cannot read the folder {dest}: {_why(e)}") from e
    if not entries:
        return "empty"
    manifest = dest / MANIFEST
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        listed = None
    if isinstance(listed, dict) and listed.get("generator") == GENERATOR:
        files, dirs = _listing(dest)
        known = set(listed.get("files", [])) | {INDEX, MANIFEST}
        if files <= known and dirs <= {DATA_DIR}:
            return "replace"
    raise ExportError(f"{dest} already holds other files; choose a new or empty folder "
                      "(a folder written by an earlier figure set is replaced)")


def _make_parent(parent: Path) -> list[Path]:
    """Create ``parent`` (and its missing ancestors); return the folders created, deepest last."""
    created: list[Path] = []
    missing = []
    p = parent
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise ExportError(f"cannot create the folder {parent}: {p} is a file, not a folder")
    for d in reversed(missing):
        try:
            d.mkdir()
        except OSError as e:
            _remove_dirs(created)
            raise ExportError(f"cannot create the folder {d}: {_why(e)}") from e
        created.append(d)
    return created


def _remove_dirs(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            pass


def _move_into_place(tmp: Path, dest: Path, state: str) -> None:
    if state == "empty":
        dest.rmdir()
    if state in ("new", "empty"):
        os.rename(tmp, dest)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    backup.rmdir()
    os.rename(dest, backup)
    try:
        os.rename(tmp, dest)
    except OSError:
        os.rename(backup, dest)
        raise
    shutil.rmtree(backup, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# writing a set
# ---------------------------------------------------------------------------------------------
def _unique(stem: str, taken: set[str], panel: str) -> str:
    if stem not in taken:
        return stem
    alt = safe_name(f"{panel}_{stem}")
    n = 2
    while alt in taken:
        alt = safe_name(f"{panel}_{stem}_{n}")
        n += 1
    return alt


def _write(folder: Path, rel: str, data: bytes | str, written: list[str]) -> None:
    path = folder / rel
    path.parent.mkdir(exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    written.append(rel)


def export_figure_set(panels: Sequence, folder: str | os.PathLike, context: FigureContext | None = None, *,
                      formats: str | Iterable[str] = ("png",), scale: float | None = DEFAULT_SCALE,
                      width: int | None = None, keep_theme: bool = False, include_data: bool = True,
                      trace=None, command: str | None = None, progress: Progress | None = None) -> FigureSetResult:
    """Write every view of ``panels`` (objects with ``title``, ``export_views()`` and
    ``export_data()``) into ``folder``; see the module docstring."""
    fmts = parse_formats(formats)
    dest = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
    if trace is None:
        trace = next((getattr(p, "trace", None) for p in panels if getattr(p, "trace", None) is not None), None)
    if context is None:
        if trace is not None:
            sel = next((getattr(p, "selection", None) for p in panels if getattr(p, "trace", None) is trace), None)
            context = FigureContext.from_trace(trace, sel)
        else:
            context = FigureContext()
    problems: list[str] = []
    plan = []
    for p in panels:
        try:
            views = list(p.export_views())
        except Exception as e:  # a panel's own bug must not cost the other panels their figures
            problems.append(f"{panel_label(p)}: its views could not be listed ({type(e).__name__}: {e})")
            views = []
        plan.append((panel_label(p), p, views))
    n_figures = sum(len(views) for _, _, views in plan) * len(fmts)
    total = n_figures + (len(plan) + 1 if include_data else 0) + 1
    destination_state(dest)  # refuse a folder holding other files before anything is rendered
    created = _make_parent(dest.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    except OSError as e:
        _remove_dirs(created)
        raise ExportError(f"cannot write in {dest.parent}: {_why(e)}") from e
    done = 0

    def step(what: str) -> None:
        nonlocal done
        if progress is not None and progress(done, total, what) is False:
            raise ExportCancelled("the figure set was cancelled; nothing was written")
        done += 1

    written: list[str] = []
    figures: list[FigureEntry] = []
    data: list[tuple[str, str]] = []
    try:
        taken: set[str] = set()
        for label, _panel, views in plan:
            for view in views:
                stem = _unique(safe_name(view.name), taken, safe_name(label.lower()))
                taken.add(stem)
                entry = FigureEntry(label, stem, view.title or view.name)
                try:
                    fig = layout_figure(view, context, keep_theme=keep_theme)
                    entry.size = (fig.size.width(), fig.size.height())
                    for fmt in fmts:
                        step(f"{label}: {entry.title} ({fmt.upper()})")
                        rel = f"{stem}.{fmt}"
                        _write(tmp, rel, render_format(view, fmt, context, scale=scale, width=width,
                                                       keep_theme=keep_theme), written)
                        entry.files[fmt] = rel
                        if fmt == "png":
                            s = raster_scale(fig, scale, width)
                            entry.png_size = (int(width) if width else round(fig.size.width() * s),
                                              round(fig.size.height() * s))
                except (OSError, ExportError):
                    raise  # the destination or the options are at fault: the whole set fails
                except Exception as e:
                    problems.append(f"{label}: view {view.name!r} could not be drawn ({type(e).__name__}: {e})")
                if entry.files:
                    figures.append(entry)
        if include_data:
            if trace is not None:
                step("the trace's activations (NPZ)")
                rel = f"{DATA_DIR}/trace.npz"
                _write(tmp, rel, trace_npz(trace), written)
                data.append((rel, "every activation under its TransformerLens name, logits, probs, logit "
                                  "lens, tokens, LayerNorm statistics and the weights shown"))
            taken_data = {"trace"}
            for label, panel, _views in plan:
                step(f"{label}: data")
                try:
                    entries = panel.export_data() or {}
                except Exception as e:
                    problems.append(f"{label}: its data could not be exported ({type(e).__name__}: {e})")
                    entries = {}
                for name, value in entries.items():
                    for fname, content in data_files({name: value}).items():
                        stem, ext = fname.rsplit(".", 1)
                        stem = _unique(stem, taken_data, safe_name(label.lower()))
                        taken_data.add(stem)
                        rel = f"{DATA_DIR}/{stem}.{ext}"
                        _write(tmp, rel, content, written)
                        data.append((rel, f"{label}: {describe(value)}"))
        step("index.html")
        manifest = _manifest(context, fmts, scale, width, keep_theme, figures, data, written, command)
        manifest["problems"] = problems
        _write(tmp, MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", written)
        _write(tmp, INDEX, index_html(context, figures, data, fmts, scale, width, command, problems), written)
        if progress is not None:
            progress(total, total, "done")
        os.chmod(tmp, 0o755 & ~_umask())
        _move_into_place(tmp, dest, destination_state(dest))
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_dirs(created)
        if isinstance(e, OSError):
            raise ExportError(f"cannot write the figure set to {dest}: {_why(e)}") from e
        raise
    files = sorted(dest / rel for rel in written)
    return FigureSetResult(dest, files, figures, data, problems)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _manifest(ctx: FigureContext, fmts, scale, width, keep_theme, figures, data, written, command) -> dict:
    return {
        "generator": GENERATOR,
        "created": datetime.now().isoformat(timespec="seconds"),
        "model": ctx.model_name,
        "model_summary": ctx.model_summary,
        "prompt": ctx.prompt,
        "tokens": ctx.n_tokens,
        "settings": dict(ctx.settings),
        "selection": {k: v for k, v in ctx.info.items() if k != "config"},
        "config": ctx.info.get("config"),
        "notes": list(ctx.notes),
        "formats": list(fmts),
        "scale": None if width else scale,
        "width": width,
        "theme": "kept" if keep_theme else "light",
        "command": command,
        "figures": [{"panel": f.panel, "name": f.name, "title": f.title, "files": f.files,
                     "logical_size": list(f.size), "png_size": list(f.png_size) if f.png_size else None}
                    for f in figures],
        "data": [{"file": rel, "contents": what} for rel, what in data],
        "files": sorted(set(written) | {MANIFEST, INDEX}),
    }


# ---------------------------------------------------------------------------------------------
# index.html
# ---------------------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1.5em; color: #202020; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table.meta { border-collapse: collapse; margin: 1em 0; } table.meta th { text-align: left; padding: .2em 1em .2em 0;
       vertical-align: top; color: #555; font-weight: 600; } table.meta td { padding: .2em 0; }
code.prompt { white-space: pre-wrap; background: #f4f4f4; padding: .1em .3em; border-radius: 3px; }
figure { margin: 1.2em 0 2em; } figure img, figure object { max-width: 100%; height: auto;
       border: 1px solid #e4e4e4; } figcaption { color: #444; margin-top: .3em; }
figcaption a { margin-right: .8em; } .note { color: #8a5300; } ul.data li { margin: .2em 0; }
pre.cmd { background: #f4f4f4; padding: .6em; overflow-x: auto; }
"""


def _href(rel: str) -> str:
    return quote(rel, safe="/")


def index_html(ctx: FigureContext, figures: list[FigureEntry], data: list[tuple[str, str]], fmts,
               scale, width, command: str | None, problems: Sequence[str] = ()) -> str:
    e = html.escape
    rows = [("Model", e(ctx.model_name or "—") + (f" <small>({e(ctx.model_summary)})</small>"
                                                   if ctx.model_summary else "")),
            ("Prompt", f'<code class="prompt">{e(visible(ctx.prompt))}</code> '
                       f"<small>({ctx.n_tokens} characters traced; ⏎ newline, ␣ space)</small>")]
    rows += [(e(k[:1].upper() + k[1:]), e(v)) for k, v in ctx.settings]
    size = f"{width} px wide" if width else f"{scale:g}×"
    rows.append(("Figures", e(", ".join(f.upper() for f in fmts)) + f" · PNG at {e(size)}" * ("png" in fmts)))
    rows.append(("Created", e(datetime.now().strftime("%Y-%m-%d %H:%M"))))
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(ctx.model_name or 'GPT Explorer')} · {e(visible(ctx.prompt)[:40])}</title>",
           f"<style>{_CSS}</style></head><body>",
           "<h1>GPT Explorer figures</h1>", '<table class="meta">']
    out += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    out += [f'<p class="note">Note: {e(n)}.</p>' for n in ctx.notes]
    out += [f'<p class="note">Not included: {e(p)}.</p>' for p in problems]
    panel = None
    for f in figures:
        if f.panel != panel:
            panel = f.panel
            out.append(f"<h2>{e(panel)}</h2>")
        out.append(f'<figure id="{e(f.name)}">')
        w, h = f.size
        if "png" in f.files or "svg" in f.files:
            src = f.files.get("png") or f.files["svg"]
            out.append(f'<img src="{_href(src)}" alt="{e(f.title)}" width="{w}" height="{h}" loading="lazy">')
        else:
            out.append(f'<object data="{_href(f.files["pdf"])}" type="application/pdf" width="{w}" '
                       f'height="{h}"></object>')
        links = []
        for fmt in fmts:
            rel = f.files.get(fmt)
            if rel:
                extra = f" {f.png_size[0]}×{f.png_size[1]} px" if fmt == "png" and f.png_size else ""
                links.append(f'<a href="{_href(rel)}" download>{fmt.upper()}{extra}</a>')
        out.append(f"<figcaption><strong>{e(f.title)}</strong><br>{''.join(links)}</figcaption></figure>")
    if data:
        out.append("<h2>Data</h2><ul class=\"data\">")
        for rel, what in data:
            out.append(f'<li><a href="{_href(rel)}" download>{e(rel)}</a>: {e(what)}</li>')
        out.append("</ul><p><small>CSV files are UTF-8 with a header row; NPZ files open with "
                   "<code>numpy.load(path)</code> (no pickle needed).</small></p>")
    out.append(f'<p><small>Everything above, as data: <a href="{_href(MANIFEST)}">{MANIFEST}</a>.</small></p>')
    if command:
        out.append(f"<h2>Make this set again</h2><pre class=\"cmd\">{e(command)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
