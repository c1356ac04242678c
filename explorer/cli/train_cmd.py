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
import time

MODEL_OPTIONS = ("block_size", "n_layer", "n_head", "n_embd")
TRAIN_OPTIONS = ("batch_size", "max_iters", "lr", "min_lr", "warmup_iters", "lr_decay_iters", "weight_decay",
                 "beta1", "beta2", "grad_clip", "eval_interval", "eval_iters", "sample_chars", "seed")


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train, resume or fine-tune a model on a text file",
        description="Train a character-level GPT on a UTF-8 text file. The split is the lecture's: first 90%% "
                    "for training, last 10%% for validation. A checkpoint (weights, optimizer state, loss "
                    "history) is written atomically to --out on every evaluation and at the end; Ctrl-C saves "
                    "and exits. Presets: lecture (the lecture's 10.8M-parameter model), small (0.8M, the "
                    "bundled model's recipe), tiny (seconds). Options given explicitly override the preset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data and files")
    g.add_argument("--corpus", metavar="FILE",
                   help="UTF-8 training text (required unless --resume or --download-shakespeare)")
    g.add_argument("--download-shakespeare", action="store_true",
                   help="download Tiny Shakespeare into the user cache folder and use it as the corpus")
    g.add_argument("--out", metavar="PATH", help="checkpoint to write (.safetensors); default: the --resume file")
    g.add_argument("--resume", metavar="CKPT", help="continue the run saved in this checkpoint (same optimizer "
                                                    "state, step count and loss history)")
    g.add_argument("--init", metavar="CKPT", help="fine-tune this model (any loadable format) on --corpus; the "
                                                  "corpus must use the model's vocabulary")
    g.add_argument("--export-weights", metavar="PATH",
                   help="at the end, also write a weights-only copy (no optimizer state, smaller) here")
    g = p.add_argument_group("model (new runs only)")
    g.add_argument("--preset", choices=("lecture", "small", "tiny"), default="small",
                   help="hyperparameter preset")
    g.add_argument("--family", choices=("lecture", "nanogpt"), default="lecture",
                   help="lecture: ReLU, untied lm_head with bias; nanogpt: GELU, tied lm_head")
    g.add_argument("--n-layer", type=int, help="transformer blocks")
    g.add_argument("--n-head", type=int, help="attention heads per block")
    g.add_argument("--n-embd", type=int, help="embedding width (divisible by --n-head)")
    g.add_argument("--block-size", type=int, help="context length in characters")
    g.add_argument("--dropout", type=float, help="dropout probability (also applies when fine-tuning)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-iters", type=int, help="total optimisation steps (with --resume: extend the run)")
    g.add_argument("--batch-size", type=int, help="sequences per step")
    g.add_argument("--lr", type=float, help="peak learning rate (AdamW)")
    g.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine decay")
    g.add_argument("--warmup-iters", type=int, help="steps of linear warmup")
    g.add_argument("--lr-decay-iters", type=int, help="step where the cosine decay reaches --min-lr "
                                                      "(default: --max-iters)")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay")
    g.add_argument("--beta1", type=float, help="AdamW beta1")
    g.add_argument("--beta2", type=float, help="AdamW beta2")
    g.add_argument("--grad-clip", type=float, help="clip the gradient norm to this (0: off)")
    g.add_argument("--seed", type=int, help="random seed (batches, dropout, initial weights)")
    g = p.add_argument_group("evaluation and output")
    g.add_argument("--eval-interval", type=int, help="evaluate and save every N steps")
    g.add_argument("--eval-iters", type=int, help="batches per split in each evaluation")
    g.add_argument("--sample-chars", type=int, help="characters sampled at each evaluation (0: none)")
    g.add_argument("--log-interval", type=int, default=50,
                   help="steps between log lines when the output is not a terminal")
    g.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for PyTorch")
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
