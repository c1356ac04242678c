"""`python -m explorer inspect`: trace one prompt and print what the model computed.

    gpt-explorer inspect --prompt "ROMEO:" [--checkpoint P] [--corpus F] [--meta M] [--top-k K] [--json]

Prints the tokens (whitespace made visible: ␣ space, ⏎ newline, ⇥ tab), the top-k next characters
with their probabilities, and for every LayerNorm the mean and std of its input over the channels,
summarised over the tokens. ``--json`` prints the same as one JSON object. Errors print one line
on stderr and exit with status 1 (2 for a bad command line); no traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

PROG = "gpt-explorer inspect"


def register(sub) -> None:
    p = sub.add_parser(
        "inspect", help="trace a prompt: tokens, top-k next characters, LayerNorm statistics",
        description="Run one recorded forward pass over a prompt and print the tokens, the top-k next "
                    "characters with probabilities and a per-layer summary of the LayerNorm inputs. "
                    "Without --checkpoint, the bundled default model is used.",
    )
    p.add_argument("--checkpoint", metavar="P", help="model file: .safetensors, lecture state_dict (.pt) or "
                                                      "nanoGPT ckpt.pt (default: the bundled model)")
    p.add_argument("--corpus", metavar="F", help="training text of a lecture checkpoint (its vocabulary)")
    p.add_argument("--meta", metavar="M", help="nanoGPT meta.pkl, if it is not beside the checkpoint")
    p.add_argument("--prompt", required=True, metavar="TEXT",
                   help="the prompt; '-' reads it from standard input (keeps newlines)")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="how many next characters to list (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)

    def one_line_error(message: str) -> None:  # argparse would print the usage block too
        print(f"{PROG}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)

    p.error = one_line_error


def _fail(message: str) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def report(model, trace, top_k: int) -> dict:
    """Everything ``inspect`` shows, as plain JSON-ready data."""
    import numpy as np

    from ..core.tokenizer import display_char

    cfg = model.config
    top = []
    if trace.T:
        probs, logits = trace.probs[-1], trace.logits[-1]
        order = np.argsort(-probs, kind="stable")[: min(top_k, cfg.vocab_size)]
        top = [{"rank": r + 1, "id": int(i), "token": trace.vocab[i], "display": display_char(trace.vocab[i]),
                "prob": float(probs[i]), "logit": float(logits[i])} for r, i in enumerate(order)]
    layernorm = []
    for site in trace.ln_sites:
        st = trace.ln_stats[site]
        layer = None if site == "ln_final" else int(site.split(".")[1])
        entry = {"site": site, "layer": layer, "input_mean": [float(v) for v in st.in_mean],
                 "input_std": [float(v) for v in st.in_std]}
        if trace.T:
            entry.update(mean_of_mean=float(st.in_mean.mean()), mean_of_std=float(st.in_std.mean()),
                         min_std=float(st.in_std.min()), max_std=float(st.in_std.max()))
        layernorm.append(entry)
    return {
        "model": {"name": model.name, "source": model.source, "family": cfg.family, "config": cfg.to_dict(),
                  "n_params": model.n_params},
        "prompt": trace.text,
        "tokens": list(trace.tokens),
        "display_tokens": trace.display_tokens,
        "ids": [int(i) for i in trace.ids],
        "positions": [int(i) for i in trace.positions],
        "unknown": [{"index": i, "char": c, "display": display_char(c)} for i, c in trace.unknown],
        "cropped": trace.cropped,
        "top_k": top,
        "layernorm": layernorm,
        "elapsed_ms": round(trace.elapsed_ms, 3),
    }


def format_text(rep: dict) -> str:
    """The human-readable form of ``report()``."""
    m, c = rep["model"], rep["model"]["config"]
    lines = [f"model   {m['name']} ({m['family']}: {c['n_layer']} layers, {c['n_head']} heads, n_embd {c['n_embd']}, "
             f"block_size {c['block_size']}, {c['vocab_size']} characters, {m['n_params']:,} parameters)"]
    T = len(rep["tokens"])
    lines.append(f"tokens  {T}: " + (" ".join(rep["display_tokens"]) if T else "(none)"))
    if T:
        lines.append(f"ids     {' '.join(str(i) for i in rep['ids'])}")
    if rep["unknown"]:
        shown = ", ".join(f"{u['display']!r} at {u['index']}" for u in rep["unknown"][:12])
        more = f" and {len(rep['unknown']) - 12} more" if len(rep["unknown"]) > 12 else ""
        lines.append(f"unknown {len(rep['unknown'])} character(s) not in the vocabulary, left out: {shown}{more}")
    if rep["cropped"]:
        lines.append(f"cropped the first {rep['cropped']} character(s) were dropped to fit block_size "
                     f"{c['block_size']}")
    lines.append("")
    if not T:
        lines.append("The prompt has no character of the vocabulary: there is nothing to predict from.")
        return "\n".join(lines)
    lines.append(f"next character after {rep['display_tokens'][-1]!r} (top {len(rep['top_k'])}):")
    for t in rep["top_k"]:
        bar = "█" * max(1, round(t["prob"] * 30)) if t["prob"] >= 0.005 else ""
        lines.append(f"  {t['rank']:>2}. {t['display']:<6} p={t['prob']:.4f}  logit={t['logit']:+8.3f}  {bar}")
    lines.append("")
    lines.append(f"LayerNorm inputs: per token mean and std over the {c['n_embd']} channels, summarised over "
                 f"the {T} token(s)")
    lines.append(f"  {'site':<14} {'mean(avg)':>10} {'std(avg)':>10} {'std(min)':>10} {'std(max)':>10}")
    for e in rep["layernorm"]:
        lines.append(f"  {e['site']:<14} {e['mean_of_mean']:>10.4f} {e['mean_of_std']:>10.4f} "
                     f"{e['min_std']:>10.4f} {e['max_std']:>10.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        return _fail(f"--top-k must be at least 1, got {args.top_k}")
    prompt = args.prompt
    if prompt == "-":
        prompt = sys.stdin.read()
    from ..core.checkpoints import CheckpointError, load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = load(args.checkpoint, corpus=args.corpus, meta=args.meta)
        except CheckpointError as e:
            hint = {"corpus": " (pass --corpus)", "meta": " (pass --meta)"}.get(e.needs or "", "")
            return _fail(f"{e}{hint}")
        except (OSError, ValueError) as e:
            return _fail(str(e))
    for w in caught:
        print(f"{PROG}: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    trace = model.trace(prompt)
    rep = report(model, trace, args.top_k)
    out = sys.stdout
    if hasattr(out, "reconfigure") and (out.encoding or "").lower().replace("-", "") != "utf8":
        out.reconfigure(errors="backslashreplace")  # ⏎ ␣ on a terminal that cannot show them
    if args.json:
        print(json.dumps(rep, ensure_ascii=False, indent=2), file=out)
    else:
        print(format_text(rep), file=out)
    return 0
