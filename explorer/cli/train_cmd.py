"""`python -m explorer train`: train, resume or fine-tune a character-level GPT from the command line.

Shows a progress bar with the loss and tokens/s (one line per ``--log-interval`` steps when the
output is not a terminal), prints each evaluation with a sample, saves on every eval and at the
end, and saves then exits cleanly on Ctrl-C (a second Ctrl-C aborts at once).
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import textwrap
import time
from pathlib import Path

MODEL_OPTIONS = ("block_size", "n_layer", "n_head", "n_embd")
TRAIN_OPTIONS = ("batch_size", "max_iters", "lr", "min_lr", "warmup_iters", "lr_decay_iters", "weight_decay",
                 "beta1", "beta2", "grad_clip", "eval_interval", "eval_iters", "sample_chars", "seed")


# The presets' values, shown in --help without importing torch (a test checks them against
# explorer.core.training.PRESETS): option → (lecture, small, tiny).
PRESET_VALUES = {
    "n_layer": (6, 4, 2), "n_head": (6, 4, 2), "n_embd": (384, 128, 32), "block_size": (256, 128, 32),
    "dropout": (0.2, 0.1, 0.0), "max_iters": (5000, 4000, 200), "batch_size": (64, 32, 16),
    "lr": (3e-4, 1e-3, 3e-3), "min_lr": (3e-4, 1e-4, 3e-4), "warmup_iters": (0, 100, 10),
    "grad_clip": (0.0, 1.0, 1.0), "eval_interval": (500, 500, 50), "eval_iters": (200, 100, 10),
    "sample_chars": (200, 200, 80), "weight_decay": (0.01, 0.01, 0.01), "beta1": (0.9, 0.9, 0.9),
    "beta2": (0.999, 0.999, 0.999), "seed": (1337, 1337, 1337),
}


def _h(text: str, option: str) -> str:
    lec, small, tiny = PRESET_VALUES[option]
    if lec == small == tiny:
        return f"{text} (default {lec:g})"
    return f"{text} (lecture {lec:g} · small {small:g} · tiny {tiny:g})"


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train, resume or fine-tune a model on a text file",
        description=textwrap.fill("Train a character-level GPT on a UTF-8 text file. The split is the lecture's: first 90% "
                    "for training, last 10% for validation. A checkpoint (weights, optimizer state, loss "
                    "history) is written atomically to --out on every evaluation and at the end; Ctrl-C saves "
                    "and exits. Presets: lecture (the lecture's 10.8M-parameter model), small (0.8M; the "
                    "bundled model is this preset run for 10,000 steps), tiny (seconds). Options given explicitly override the preset; "
                    "the values in parentheses are each preset's.", 79),
        epilog="examples:\n"
               "  python -m explorer train --corpus input.txt --out run.safetensors\n"
               "  python -m explorer train --resume run.safetensors --max-iters 6000\n"
               "  python -m explorer train --init run.safetensors --corpus sonnets.txt --out ft.safetensors "
               "--max-iters 500 --lr 3e-4",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data and files")
    g.add_argument("--corpus", metavar="FILE",
                   help="UTF-8 training text (required unless --resume or --download-shakespeare)")
    g.add_argument("--download-shakespeare", action="store_true",
                   help="download Tiny Shakespeare into the user cache folder and use it as the corpus")
    g.add_argument("--out", metavar="PATH", help="checkpoint to write (.safetensors); default with --resume: "
                                                 "the resumed file")
    g.add_argument("--resume", metavar="CKPT", help="continue the run saved in this checkpoint (same optimizer "
                                                    "state, step count and loss history)")
    g.add_argument("--init", metavar="CKPT", help="fine-tune this model (any loadable format) on --corpus; the "
                                                  "corpus must use the model's vocabulary")
    g.add_argument("--export-weights", metavar="PATH",
                   help="at the end, also write a weights-only copy (no optimizer state, smaller) here")
    g = p.add_argument_group("model (new runs only)")
    g.add_argument("--preset", choices=("lecture", "small", "tiny"), default="small",
                   help="hyperparameter preset (default small)")
    g.add_argument("--family", choices=("lecture", "nanogpt"), default="lecture",
                   help="lecture: ReLU, untied lm_head with bias; nanogpt: GELU, tied lm_head (default lecture)")
    g.add_argument("--n-layer", type=int, metavar="N", help=_h("transformer blocks", "n_layer"))
    g.add_argument("--n-head", type=int, metavar="N", help=_h("attention heads per block", "n_head"))
    g.add_argument("--n-embd", type=int, metavar="N", help=_h("embedding width, divisible by --n-head", "n_embd"))
    g.add_argument("--block-size", type=int, metavar="N", help=_h("context length in characters", "block_size"))
    g.add_argument("--dropout", type=float, metavar="P",
                   help=_h("dropout probability (may also be set when fine-tuning)", "dropout"))
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-iters", type=int, metavar="N",
                   help=_h("total optimisation steps; with --resume, extends the run", "max_iters"))
    g.add_argument("--batch-size", type=int, metavar="N", help=_h("sequences per step", "batch_size"))
    g.add_argument("--lr", type=float, help=_h("peak learning rate (AdamW)", "lr"))
    g.add_argument("--min-lr", type=float, help=_h("learning rate at the end of the cosine decay", "min_lr"))
    g.add_argument("--warmup-iters", type=int, metavar="N", help=_h("steps of linear warmup", "warmup_iters"))
    g.add_argument("--lr-decay-iters", type=int, metavar="N",
                   help="step where the cosine decay reaches --min-lr (default: --max-iters)")
    g.add_argument("--weight-decay", type=float, metavar="W", help=_h("AdamW weight decay", "weight_decay"))
    g.add_argument("--beta1", type=float, metavar="B", help=_h("AdamW beta1", "beta1"))
    g.add_argument("--beta2", type=float, metavar="B", help=_h("AdamW beta2", "beta2"))
    g.add_argument("--grad-clip", type=float, metavar="C", help=_h("clip the gradient norm to C (0: off)", "grad_clip"))
    g.add_argument("--seed", type=int, help=_h("random seed of batches, dropout and initial weights", "seed"))
    g = p.add_argument_group("evaluation and output")
    g.add_argument("--eval-interval", type=int, metavar="N", help=_h("evaluate and save every N steps", "eval_interval"))
    g.add_argument("--eval-iters", type=int, metavar="N", help=_h("batches per split in each evaluation", "eval_iters"))
    g.add_argument("--sample-chars", type=int, metavar="N",
                   help=_h("characters sampled at each evaluation, 0 for none", "sample_chars"))
    g.add_argument("--log-interval", type=int, default=50, metavar="N",
                   help="steps between log lines when the output is not a terminal (default 50)")
    g.add_argument("--threads", type=int, default=os.cpu_count() or 1, metavar="N",
                   help=f"CPU threads for PyTorch (default: all, here {os.cpu_count() or 1})")
    g.add_argument("--no-progress", action="store_true", help="no progress bar: log lines only")
    p.set_defaults(func=run, _parser=p)


def command_line(args) -> str:
    """The command that reproduces this run: every option that differs from its default."""
    parts = ["python", "-m", "explorer", "train"]
    for action in args._parser._actions:
        if not action.option_strings or action.dest in ("help", "threads"):
            continue
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        flag = action.option_strings[-1]
        parts += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(x) for x in parts)


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Draws the progress bar on a terminal, or prints a line every ``log_interval`` steps."""

    def __init__(self, stream, tty: bool, log_interval: int) -> None:
        self.stream, self.tty, self.log_interval = stream, tty, max(1, log_interval)
        self.last_draw = 0.0
        self.drawn = False

    def _line(self, ev) -> str:
        frac = ev.step / ev.max_iters if ev.max_iters else 0.0
        width = 24
        bar = "█" * int(frac * width) + "·" * (width - int(frac * width))
        loss = f"{ev.loss:.4f}" if ev.loss is not None else "-"
        tps = f"{ev.tokens_per_s:,.0f}" if ev.tokens_per_s else "-"
        return (f"step {ev.step:>{len(str(ev.max_iters))}}/{ev.max_iters} {bar} {100 * frac:3.0f}% "
                f"loss {loss} lr {ev.lr:.2e} {tps} tok/s ETA {_fmt_time(ev.eta_s)}")

    def step(self, ev) -> None:
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw >= 0.1 or ev.step == ev.max_iters:
                self.stream.write("\r\x1b[2K" + self._line(ev))
                self.stream.flush()
                self.last_draw, self.drawn = now, True
        elif ev.step % self.log_interval == 0:
            self.stream.write(self._line(ev) + f" elapsed {_fmt_time(ev.elapsed_s)}\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\x1b[2K")
            self.drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()


def _overrides(args, names) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def run(args) -> int:
    import torch

    from ..core.checkpoints import CheckpointError, load
    from ..core.data import CorpusError, DownloadError, download_tiny_shakespeare, load_corpus
    from ..core.training import Trainer, TrainingDiverged, preset

    torch.set_num_threads(max(1, args.threads))
    command = command_line(args)
    out = sys.stdout
    progress = Progress(sys.stderr, sys.stderr.isatty() and not args.no_progress, args.log_interval)

    def fail(msg: str) -> int:
        print(f"explorer train: error: {msg}", file=sys.stderr)
        return 2

    if args.resume and args.init:
        return fail("--resume continues a run; --init starts a fine-tuning run: give one of them")
    if not (args.out or args.resume):
        return fail("--out PATH is required (where to save the checkpoint)")
    for target in (args.out, args.export_weights):
        if target:
            try:
                Path(target).resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                return fail(f"cannot create the folder for {target}: {e.strerror or e}")
    try:
        corpus_path = args.corpus
        if args.download_shakespeare:
            progress.message("downloading Tiny Shakespeare…")
            corpus_path = str(download_tiny_shakespeare())
            progress.message(f"corpus: {corpus_path}")
        if args.resume:
            extra = [n for n in MODEL_OPTIONS + TRAIN_OPTIONS if n != "max_iters" and getattr(args, n, None) is not None]
            if extra:
                return fail("--resume continues the run with its own settings; only --max-iters can change "
                            f"(got --{extra[0].replace('_', '-')})")
            trainer = Trainer.from_checkpoint(args.resume, corpus_path, out=args.out, max_iters=args.max_iters,
                                              info={"command": command})
            if trainer.step >= trainer.config.max_iters:
                return fail(f"{args.resume} already finished at step {trainer.step}; pass --max-iters N with "
                            f"N > {trainer.step} to extend it")
            progress.message(f"resuming {args.resume} at step {trainer.step}/{trainer.config.max_iters}")
        else:
            if not corpus_path:
                return fail("--corpus FILE is required (or --download-shakespeare)")
            model_cfg, train_cfg = preset(args.preset, family=args.family)
            from dataclasses import replace

            model_cfg = replace(model_cfg, **_overrides(args, MODEL_OPTIONS + ("dropout",)))
            train_cfg = replace(train_cfg, **_overrides(args, TRAIN_OPTIONS))
            info = {"command": command, "preset": args.preset}
            if args.init:
                shape = [n for n in MODEL_OPTIONS if getattr(args, n) is not None]
                if shape:
                    return fail(f"--{shape[0].replace('_', '-')} cannot change when fine-tuning: the shape "
                                "comes from the --init model")
                model = load(args.init)
                corpus = load_corpus(corpus_path, vocab=model.vocab)
                trainer = Trainer(corpus, train_cfg, model=model,
                                  model_config=model_cfg if args.dropout is not None else None,
                                  out=args.out, info=info)
            else:
                trainer = Trainer(load_corpus(corpus_path), train_cfg, model_config=model_cfg, out=args.out,
                                  info=info)
    except (CorpusError, CheckpointError, DownloadError, ValueError, OSError) as e:
        return fail(str(e))

    c, t = trainer.module.config, trainer.config
    progress.message(f"model: {c.family}, {c.n_layer} layers, {c.n_head} heads, {c.n_embd} dims, block {c.block_size}, "
                     f"vocab {c.vocab_size}, dropout {c.dropout} — {trainer.module.num_params():,} parameters")
    progress.message(f"training: batch {t.batch_size}, {t.max_iters} steps, lr {t.lr:g}→{t.min_lr:g} "
                     f"(warmup {t.warmup_iters}), weight decay {t.weight_decay:g}, clip {t.grad_clip:g}, "
                     f"{torch.get_num_threads()} threads → {trainer.out}")

    interrupts = {"n": 0}

    def on_sigint(signum, frame):
        interrupts["n"] += 1
        if interrupts["n"] > 1:
            raise KeyboardInterrupt
        progress.message("Ctrl-C: stopping after this step and saving (press again to abort without saving)")
        trainer.request_stop()

    def on_event(ev) -> None:
        if ev.kind == "step":
            progress.step(ev)
        elif ev.kind == "eval":
            best = " (best)" if ev.best_val_loss == ev.val_loss else ""
            progress.message(f"step {ev.step}: train loss {ev.train_loss:.4f}, val loss {ev.val_loss:.4f}{best}, "
                             f"{_fmt_time(ev.elapsed_s)} elapsed")
            if ev.sample:
                progress.message("  | " + ev.sample.replace("\n", "\n  | "))
        elif ev.kind == "checkpoint":
            progress.message(f"saved {ev.path}")
        elif ev.kind in ("finished", "stopped", "diverged"):
            progress.message(ev.message or ev.kind)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = trainer.run(on_event)
    except KeyboardInterrupt:
        progress.message("aborted; the last checkpoint on disk is unchanged")
        return 130
    except (CheckpointError, TrainingDiverged) as e:
        return fail(str(e))
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.status == "diverged":
        return 3
    if args.export_weights:
        try:
            path = trainer.save(args.export_weights, weights_only=True)
        except CheckpointError as e:
            return fail(str(e))
        progress.message(f"weights-only copy: {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    print(f"{result.status}: step {result.step}, train loss {result.train_loss:.4f}, val loss "
          f"{result.val_loss:.4f}, {_fmt_time(result.elapsed_s)} of training → {result.path}"
          if result.val_loss is not None else f"{result.status}: step {result.step} → {result.path}", file=out)
    return 0 if result.status == "finished" else 130 if result.status == "stopped" else 0
