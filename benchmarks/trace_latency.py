"""How long one fully recorded ``model.trace()`` takes, next to the lecture's bare forward pass.

For two sizes, the small default (n_layer 4, n_head 4, n_embd 128, block_size 128) and the
lecture's (6, 6, 384, 256), the script builds the lecture's ``GPTLanguageModel`` exactly as the
lecture writes it (one ``Head`` module per head, each with its own key/query/value ``Linear``,
``torch.cat`` of the heads), loads the same random weights into GPT Explorer through the lecture
checkpoint loader, and times at T = block_size:

* ``reference``: the lecture model's bare forward pass (no recording), under ``torch.inference_mode``;
* ``trace``: ``ExplorerModel.trace(text)``: one forward pass that records every activation, the
  LayerNorm statistics and the logit lens, and hands them back as numpy arrays;
* ``bare``: GPT Explorer's own forward pass without recording (batched heads, fused attention),
  for scale: the part of the trace's time that is the model itself.

The three are timed in turn, so a change in machine load affects them alike, and each run is
timed by the process's CPU time (``time.process_time``) with one torch thread by default, which
other programs on a busy machine disturb far less than wall-clock time. The medians and their
ratio are printed (wall-clock medians beside them). Targets: small <= 0.65x, lecture size <= 1.0x.

    python benchmarks/trace_latency.py [--repeats N] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

import explorer
from lecture_reference import GPTLanguageModel

SIZES = {
    # name: (n_layer, n_head, n_embd, block_size, target ratio)
    "small": (4, 4, 128, 128, 0.65),
    "lecture": (6, 6, 384, 256, 1.0),
}
VOCAB = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # Tiny Shakespeare's 65


# ---- measurement ----------------------------------------------------------------------------------
def measure(name: str, repeats: int, folder: Path) -> dict:
    n_layer, n_head, n_embd, block_size, target = SIZES[name]
    torch.manual_seed(0)
    ref = GPTLanguageModel(len(VOCAB), n_embd, n_head, n_layer, block_size).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.1)
    path = folder / f"{name}.pt"
    torch.save(ref.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 65-character default vocabulary is intended here
        model = explorer.load(path)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, len(VOCAB), (1, block_size), generator=g)
    text = "".join(VOCAB[i] for i in ids[0].tolist())

    def run_reference():
        with torch.inference_mode():
            ref(ids)

    def run_trace():
        model.trace(text)

    def run_bare():
        with torch.inference_mode():
            model.module(ids)

    for _ in range(3):  # warm-up (allocator, first-call overheads)
        run_reference()
        run_trace()
        run_bare()
    t_ref, t_trace, w_ref, w_trace, t_bare, w_bare = [], [], [], [], [], []
    for _ in range(repeats):
        for fn, cpu, wall in ((run_reference, t_ref, w_ref), (run_trace, t_trace, w_trace),
                              (run_bare, t_bare, w_bare)):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    with torch.inference_mode():
        diff = float((ref(ids)[0][0] - torch.from_numpy(model.trace(text).logits.copy())).abs().max())
    ref_ms = statistics.median(t_ref) * 1e3
    trace_ms = statistics.median(t_trace) * 1e3
    bare_ms = statistics.median(t_bare) * 1e3
    return dict(size=name, n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                reference_ms=round(ref_ms, 3), trace_ms=round(trace_ms, 3), ratio=round(trace_ms / ref_ms, 3),
                reference_wall_ms=round(statistics.median(w_ref) * 1e3, 3),
                trace_wall_ms=round(statistics.median(w_trace) * 1e3, 3),
                bare_ms=round(bare_ms, 3), bare_ratio=round(bare_ms / ref_ms, 3),
                bare_wall_ms=round(statistics.median(w_bare) * 1e3, 3),
                target=target, met=trace_ms / ref_ms <= target, max_abs_logit_diff=diff, repeats=repeats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed runs of each (default 30)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's choice)")
    ap.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(name, args.repeats, Path(tmp)) for name in args.sizes]
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results},
                         indent=2))
    else:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), median CPU time of {args.repeats} "
              f"runs, T = block_size")
        print(f"{'size':<8} {'L,H,C,T':<14} {'reference':>10} {'trace':>10} {'ratio':>7} {'target':>7}  result  "
              f"(wall: reference / trace)")
        for r in results:
            shape = f"{r['n_layer']},{r['n_head']},{r['n_embd']},{r['block_size']}"
            print(f"{r['size']:<8} {shape:<14} {r['reference_ms']:>8.2f}ms {r['trace_ms']:>8.2f}ms "
                  f"{r['ratio']:>6.2f}x {r['target']:>6.2f}x  {'met   ' if r['met'] else 'MISSED'}  "
                  f"({r['reference_wall_ms']:.2f} / {r['trace_wall_ms']:.2f} ms)")
            print(f"{'':<8} bare forward (no recording) {r['bare_ms']:.2f}ms = {r['bare_ratio']:.2f}x "
                  f"(wall {r['bare_wall_ms']:.2f} ms); max |logit difference| trace vs reference: "
                  f"{r['max_abs_logit_diff']:.1e}")
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
