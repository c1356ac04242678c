"""`python -m explorer export`: every panel's figures for one prompt, written without a window.

    python -m explorer export --prompt "ROMEO:" --out figures/ [--checkpoint P] [--format png,svg,pdf]
                              [--layer L] [--head H] [--position N] [--projection pca|tsne] [--scale 2]

It loads the model, traces the prompt once, builds the app's own panels offscreen (Qt's
``offscreen`` platform, so no display is needed), and writes the same figures as File → Export
figure set… in the app: every view in each format, ``index.html``, ``figures.json`` and the data
(CSV tables, NPZ arrays, ``data/trace.npz`` with every activation). It prints each file written.
A bad checkpoint, a bad option or an unwritable folder ends it with one line on stderr and exit
status 2; nothing half-written is left behind. If a panel fails to draw a view or give its data,
the rest is still written, the gap is named in index.html and on stderr, and the exit status is 1.
"""
from __future__ import annotations

import shlex
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write every panel's figures (PNG/SVG/PDF), index.html and the data for a prompt, headlessly",
        description="Render the app's panels for one prompt without opening a window and write every "
                    "view as PNG/SVG/PDF into a folder, with index.html, figures.json and the data "
                    "(CSV tables, NPZ arrays, every activation of the trace).",
    )
    p.add_argument("--checkpoint", metavar="P", help="model file (default: the bundled model)")
    p.add_argument("--corpus", metavar="F", help="training text of a lecture-format checkpoint (its vocabulary)")
    p.add_argument("--meta", metavar="M", help="nanoGPT meta.pkl, if it is not beside the checkpoint")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the prompt to trace (use $'...' for newlines)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder to create (or an empty one, or an earlier figure set, which is replaced)")
    p.add_argument("--format", default="png", metavar="LIST",
                   help="comma-separated figure formats: png, svg, pdf (default: png)")
    p.add_argument("--layer", type=int, metavar="L",
                   help="-1 embeddings, 0..n_layer-1 a block, n_layer ln_f / lm_head (default 0)")
    p.add_argument("--ln-site", metavar="SITE", help="LayerNorm to show, e.g. blocks.1.ln2 (default: the layer's ln1)")
    p.add_argument("--head", type=int, metavar="H", help="attention head (default 0)")
    p.add_argument("--position", type=int, metavar="N", help="token position; -1 = last (default: the last)")
    p.add_argument("--projection", choices=("pca", "tsne"), default="pca", help="embedding projection (default pca)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--scale", type=float, default=2.0, metavar="S",
                      help="PNG scale: 1, 2 (default) or 4 times the on-screen size")
    size.add_argument("--width", type=int, metavar="PX", help="PNG width in pixels instead of a scale")
    p.add_argument("--keep-theme", action="store_true",
                   help="draw with the app's colours instead of the default white background")
    p.add_argument("--no-data", action="store_true", help="write only the figures and index.html")
    p.add_argument("--size", default="1200x800", metavar="WxH",
                   help="logical size of each panel in pixels (default 1200x800)")
    p.add_argument("--quiet", action="store_true", help="print only the folder, not every file")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"gpt-explorer export: error: {message}", file=sys.stderr)
    return 2


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 1200x800, not {text!r}") from None
    if not (200 <= w <= 8000 and 150 <= h <= 8000):
        raise ValueError(f"--size {text} is out of range (200x150 … 8000x8000)")
    return w, h


def _command(args) -> str:
    parts = ["python", "-m", "explorer", "export"]
    for flag, value in (("--checkpoint", args.checkpoint), ("--corpus", args.corpus), ("--meta", args.meta),
                        ("--prompt", args.prompt), ("--out", args.out), ("--format", args.format),
                        ("--layer", args.layer), ("--ln-site", args.ln_site), ("--head", args.head),
                        ("--position", args.position), ("--projection", args.projection),
                        ("--width", args.width)):
        if value is not None:
            parts += [flag, str(value)]
    if args.width is None:
        parts += ["--scale", f"{args.scale:g}"]
    if args.size != "1200x800":
        parts += ["--size", args.size]
    parts += [f for f, on in (("--keep-theme", args.keep_theme), ("--no-data", args.no_data)) if on]
    return " ".join(shlex.quote(p) for p in parts)


def run(args) -> int:
    # everything that can go wrong is reported in one line; no traceback for expected failures
    try:
        size = _size(args.size)
        if args.width is None and not 0 < args.scale <= 8:
            return _fail(f"--scale must be between 0 and 8, not {args.scale:g}")
        from ..gui.export_set import parse_formats

        formats = parse_formats(args.format)
    except Exception as e:  # ValueError or ExportError: a bad option
        return _fail(str(e))

    from ..core.checkpoints import CheckpointError, load

    try:
        model = load(args.checkpoint, corpus=args.corpus, meta=args.meta)
    except CheckpointError as e:
        return _fail(str(e))
    except Exception as e:  # an unexpected reading problem still gets one line
        return _fail(f"{args.checkpoint or 'the bundled model'}: {type(e).__name__}: {e}")
    trace = model.trace(args.prompt)
    if trace.T == 0:
        return _fail("the prompt has no character of the model's vocabulary")

    from ..gui.export_headless import quiet_qt_messages

    with quiet_qt_messages():
        return _export(args, model, trace, size, formats)


def _export(args, model, trace, size, formats) -> int:
    from ..gui.export_dialogs import panel_settings
    from ..gui.export_headless import build_panels, close_panels, selection_for
    from ..gui.export_render import ExportError, FigureContext
    from ..gui.export_set import export_figure_set

    panels = []
    try:
        selection = selection_for(trace, layer=args.layer, head=args.head, position=args.position,
                                  ln_site=args.ln_site)
        panels, skipped = build_panels(model, trace, selection, projection=args.projection, size=size)
        for name, why in skipped.items():
            print(f"gpt-explorer export: note: panel {name} skipped: {why}", file=sys.stderr)
        extra = {}
        for p in panels:
            extra.update(panel_settings(p))
        projection = extra.pop("projection", "t-SNE" if args.projection == "tsne" else "PCA")
        context = FigureContext.from_trace(trace, selection, projection=projection, extra=extra)
        result = export_figure_set(panels, args.out, context, formats=formats,
                                   scale=None if args.width else args.scale, width=args.width,
                                   keep_theme=args.keep_theme, include_data=not args.no_data, trace=trace,
                                   command=_command(args))
    except ExportError as e:
        return _fail(str(e))
    finally:
        close_panels(panels)
    if args.quiet:
        print(result.folder)
    else:
        for f in result.files:
            print(f)
    for problem in result.problems:
        print(f"gpt-explorer export: warning: {problem}", file=sys.stderr)
    return 1 if result.problems else 0
