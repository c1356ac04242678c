"""Training throughput: this project's Trainer against the lecture's own per-head training loop.

For each size (the ``small`` preset and the lecture's 6-layer 384-dim model) it runs, each in a
fresh child process so that the peak memory of one does not hide the other:

* **reference**: the "GPT from scratch" lecture's modules as written there (``Head``,
  ``MultiHeadAttention`` over a ModuleList of heads, ``FeedForward``, ``Block``,
  ``GPTLanguageModel``) and its loop: ``get_batch``, forward, ``zero_grad(set_to_none=True)``,
  backward, ``AdamW.step()``;
* **trainer**: ``explorer.core.training.Trainer.run`` on the same hyperparameters and the same
  batches (with its learning-rate schedule, gradient clipping and event callback included).

The two alternate for ``--rounds`` rounds (the machine may be shared; alternation spreads any
background load over both) and the best round of each is reported: tokens/s = batch × block ×
timed steps / seconds, and the child's peak resident memory. Prints a Markdown table with the ratios.

    python benchmarks/train_throughput.py [--corpus input.txt] [--rounds 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
SIZES = {  # name: (preset, warmup steps, timed steps)
    "small": ("small", 3, 20),
    "lecture": ("lecture", 1, 3),
}


def child(impl: str, size: str, corpus_path: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from dataclasses import replace

    from explorer.core.data import get_batch, load_corpus
    from explorer.core.training import Trainer, preset

    preset_name, warmup, timed = SIZES[size]
    corpus = load_corpus(corpus_path)
    mcfg, tcfg = preset(preset_name, vocab_size=len(corpus.vocab))
    B, T = tcfg.batch_size, mcfg.block_size
    steps = warmup + timed
    if impl == "reference":
        torch.manual_seed(tcfg.seed)
        from lecture_reference import GPTLanguageModel

        model = GPTLanguageModel(len(corpus.vocab), mcfg.n_embd, mcfg.n_head, mcfg.n_layer, T, mcfg.dropout)
        opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr)
        train = corpus.split(T).train
        gen = torch.Generator().manual_seed(tcfg.seed)  # the trainer's batch stream
        model.train()
        stamps = []
        for _ in range(steps):
            xb, yb = get_batch(train, B, T, gen)
            logits, loss = model(xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            stamps.append(time.perf_counter())
        first_loss = None
    else:
        tcfg = replace(tcfg, max_iters=steps, eval_interval=10**9, eval_iters=1, sample_chars=0)  # timing ends before the final eval
        trainer = Trainer(corpus, tcfg, model_config=mcfg)
        stamps = []
        trainer.run(lambda e: stamps.append(time.perf_counter()) if e.kind == "step" else None)
    seconds = stamps[-1] - stamps[warmup - 1]
    return {"impl": impl, "size": size, "tokens_per_s": B * T * timed / seconds, "s_per_step": seconds / timed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "batch": B, "block": T,
            "timed_steps": timed, "threads": threads}


def run_child(impl: str, size: str, corpus: str, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", impl, size, "--corpus", corpus,
                          "--threads", str(threads)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{impl}/{size} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="training text (default: Tiny Shakespeare)")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES), help="model sizes to run")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per implementation (best is kept)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    ap.add_argument("--child", nargs=2, metavar=("IMPL", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.corpus, args.threads)))
        return 0
    if not Path(args.corpus).is_file():
        raise SystemExit(f"corpus {args.corpus} not found; pass --corpus FILE")
    import torch

    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, best of {args.rounds} rounds")
    rows = []
    for size in args.sizes:
        best: dict[str, dict] = {}
        for r in range(args.rounds):
            for impl in (("reference", "trainer") if r % 2 == 0 else ("trainer", "reference")):
                res = run_child(impl, size, args.corpus, args.threads)
                print(f"  round {r + 1} {size:8s} {impl:9s} {res['tokens_per_s']:9,.0f} tok/s "
                      f"{res['s_per_step'] * 1000:8.0f} ms/step  peak RSS {res['peak_rss_mb']:7.0f} MB", flush=True)
                if impl not in best or res["tokens_per_s"] > best[impl]["tokens_per_s"]:
                    best[impl] = res
        rows.append((size, best["reference"], best["trainer"]))
    print()
    print("| model | batch × block | reference tok/s | trainer tok/s | ratio | reference peak RSS | trainer peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for size, ref, ours in rows:
        print(f"| {size} | {ref['batch']} × {ref['block']} | {ref['tokens_per_s']:,.0f} | {ours['tokens_per_s']:,.0f} | "
              f"**{ours['tokens_per_s'] / ref['tokens_per_s']:.2f}×** | {ref['peak_rss_mb']:,.0f} MB | "
              f"{ours['peak_rss_mb']:,.0f} MB |")
    if args.json:
        Path(args.json).write_text(json.dumps([{"size": s, "reference": a, "trainer": b} for s, a, b in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
