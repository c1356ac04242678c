"""The core stays scriptable without a display: importing ``explorer`` and ``explorer.core`` (and
using them) pulls in neither Qt nor pyqtgraph, nor scikit-learn (imported only for a projection)."""
from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "sklearn")

PROBE = """
import json, sys
import explorer
import explorer.core
from explorer.core import checkpoints, model, stats, tokenizer, trace
from explorer.cli import inspect_cmd
m = explorer.ExplorerModel.untrained(explorer.GPTConfig(vocab_size=3, block_size=4, n_layer=1, n_head=1, n_embd=4),
                                     ["a", "b", "c"])
t = m.trace("abc")
print(json.dumps({"loaded": sorted({name.split(".")[0] for name in sys.modules}), "T": t.T}))
"""


def test_importing_and_tracing_loads_no_gui_library():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["T"] == 3
    assert "torch" in result["loaded"] and "explorer" in result["loaded"]  # the probe did import the core
    for name in FORBIDDEN:
        assert name not in result["loaded"], f"importing the core imported {name}"


def test_importing_explorer_alone_does_not_import_torch():
    """`import explorer` is instant: the public names resolve on first use."""
    probe = "import sys, explorer; print(int('torch' in sys.modules)); explorer.GPTConfig; print(int('torch' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["0", "1"]
