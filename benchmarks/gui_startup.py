"""Start-up time: from launching ``python main.py`` to the first painted window and to the first
painted trace, next to a bare ``python -c "import torch, PySide6.QtWidgets"`` measured in the same
run (alternating, so machine load affects both alike).

The app is started offscreen with ``GPT_EXPLORER_STARTUP_TIMING=quit``: it prints the wall-clock
time of its first paint and of the first paint after the first trace, then quits. Times are
measured from just before the process is launched (interpreter start-up included, for both).

    python benchmarks/gui_startup.py [--repeats 5] [--checkpoint P] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_app(checkpoint: str | None) -> tuple[float, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GPT_EXPLORER_STARTUP_TIMING="quit",
               XDG_CONFIG_HOME=tempfile.mkdtemp())
    cmd = [sys.executable, str(ROOT / "main.py")] + ([checkpoint] if checkpoint else [])
    t0 = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    times = {}
    for line in out.stderr.splitlines():
        if line.startswith("startup "):
            _, key, value = line.split()
            times[key] = float(value)
    if "first_trace_paint" not in times:
        raise SystemExit(f"the app did not report its start-up times:\n{out.stderr[-2000:]}")
    return times["first_paint"] - t0, times["first_trace_paint"] - t0


def run_bare() -> float:
    """Launch → the end of ``import torch, PySide6.QtWidgets`` (the child prints when it is done)."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", "import torch, PySide6.QtWidgets, time; print(time.time())"],
                         check=True, timeout=300, capture_output=True, text=True)
    return float(out.stdout.split()[-1]) - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--checkpoint", default=None, help="model to open (default: the bundled model)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    run_bare()  # warm the file cache for both
    run_app(args.checkpoint)
    bare, paint, trace = [], [], []
    for _ in range(args.repeats):
        bare.append(run_bare())
        p, t = run_app(args.checkpoint)
        paint.append(p)
        trace.append(t)
    med = statistics.median
    result = {"repeats": args.repeats, "bare_import_torch_pyside6_s": med(bare), "first_painted_window_s": med(paint),
              "first_painted_trace_s": med(trace), "all": {"bare": bare, "paint": paint, "trace": trace}}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"median of {args.repeats} launches (process start included):")
        print(f"  bare `import torch, PySide6.QtWidgets`: {med(bare):.2f} s")
        print(f"  first painted window:                  {med(paint):.2f} s")
        print(f"  first painted trace:                   {med(trace):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
