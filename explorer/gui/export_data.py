"""The numbers behind the figures: CSV for tables, NPZ for arrays, and the whole trace as one NPZ.

* ``table_csv(table)``: a panel's ``Table`` (logits top-k, LayerNorm statistics, projected points
  with their labels) as UTF-8 CSV text, one header row;
* ``arrays_npz(arrays)``: a dict of numpy arrays as a compressed ``.npz`` that ``np.load`` reads
  without pickle (strings are stored as unicode arrays);
* ``trace_arrays(trace)``: every activation of a ``Trace`` under its TransformerLens name
  (``blocks.0.attn.hook_pattern`` …), plus ``logits``, ``probs``, ``logit_lens``, ``tokens``,
  ``ids``, ``positions``, the prompt, the LayerNorm statistics and the weights the views explain;
* ``data_files(panel_data)``: ``{file name: bytes}`` for a panel's ``export_data()``;
* ``write_atomic(path, data)``: write bytes through a temp file in the same folder and rename it
  into place, so a failed write never leaves a truncated file behind.

No Qt here: the functions are usable from scripts and notebooks as well.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .export_render import ExportError
from .panels.base import Table


def _cell(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def table_csv(table: Table) -> str:
    """The table as CSV text (``\\n`` line ends; cells holding commas, quotes or newlines quoted)."""
    if not isinstance(table, Table):
        raise ExportError(f"expected a Table, got {type(table).__name__}")
    n = len(table.columns)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([str(c) for c in table.columns])
    for i, row in enumerate(table.rows):
        row = list(row)
        if len(row) != n:
            raise ExportError(f"table row {i} has {len(row)} cells but there are {n} columns")
        w.writerow([_cell(v) for v in row])
    return out.getvalue()


def _as_array(name: str, value: Any) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype == object:
        raise ExportError(f"array {name!r} holds Python objects; NPZ files store only numbers and strings")
    return a


def arrays_npz(arrays: Mapping[str, Any]) -> bytes:
    """A compressed NPZ of ``arrays`` (names may contain dots, as TransformerLens names do)."""
    if not arrays:
        raise ExportError("no arrays to write")
    clean = {str(k): _as_array(str(k), v) for k, v in arrays.items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **clean)
    return buf.getvalue()


def trace_arrays(trace) -> dict[str, np.ndarray]:
    """Everything a ``Trace`` recorded, as named numpy arrays (see the module docstring)."""
    out: dict[str, np.ndarray] = {
        "text": np.array(trace.text),
        "model_name": np.array(trace.model_name),
        "config_json": np.array(json.dumps(trace.config.to_dict())),
        "tokens": np.array(list(trace.tokens), dtype=f"<U{max([1] + [len(t) for t in trace.tokens])}"),
        "ids": np.asarray(trace.ids),
        "positions": np.asarray(trace.positions),
        "vocab": np.array(list(trace.vocab), dtype=f"<U{max([1] + [len(t) for t in trace.vocab])}"),
        "cropped": np.array(trace.cropped),
        "unknown_positions": np.array([i for i, _ in trace.unknown], dtype=np.int64),
        "logits": np.asarray(trace.logits),  # (T, V)
        "probs": np.asarray(trace.probs),  # (T, V)
        "logit_lens": np.asarray(trace.logit_lens),  # (n_layer + 1, T, V)
    }
    for name, a in trace.acts.items():
        out[name] = np.asarray(a)
    for site, st in trace.ln_stats.items():
        for fld in ("in_mean", "in_std", "in_norm", "out_mean", "out_std", "gain", "bias"):
            out[f"ln_stats.{site}.{fld}"] = np.asarray(getattr(st, fld))
    for name, a in trace.params.items():
        out[f"params.{name}"] = np.asarray(a)
    return out


def trace_npz(trace) -> bytes:
    return arrays_npz(trace_arrays(trace))


def describe(value: Any) -> str:
    """A short description of a data entry for index pages: columns or array shapes."""
    if isinstance(value, Table):
        return f"{len(value.rows)} rows · " + ", ".join(map(str, value.columns))
    if isinstance(value, Mapping):
        parts = [f"{k} {tuple(np.shape(v))}" for k, v in value.items()]
        return ", ".join(parts)
    return f"array {tuple(np.shape(value))}"


def data_files(panel_data: Mapping[str, Any], prefix: str = "") -> dict[str, bytes]:
    """``{file name: content}`` for a panel's ``export_data()``: ``name.csv`` for a ``Table``,
    ``name.npz`` for an array (stored under its own name) or a dict of arrays."""
    files: dict[str, bytes] = {}
    for name, value in panel_data.items():
        stem = safe_name(f"{prefix}{name}")
        if isinstance(value, Table):
            files[f"{stem}.csv"] = table_csv(value).encode("utf-8")
        elif isinstance(value, Mapping):
            files[f"{stem}.npz"] = arrays_npz(value)
        elif isinstance(value, (np.ndarray, list, tuple)):
            files[f"{stem}.npz"] = arrays_npz({str(name): value})
        else:
            raise ExportError(f"data entry {name!r} is a {type(value).__name__}; expected a Table, an array "
                              "or a dict of arrays")
    return files


def safe_name(name: str) -> str:
    """A file-name-friendly version of ``name`` (letters, digits, ``-``, ``_`` and ``.``)."""
    out = "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "-_.")) else "_" for ch in str(name))
    out = out.strip("._") or "view"
    return out[:80]


def _file_mode() -> int:
    mask = os.umask(0)  # read the umask (there is no other portable way) and put it back
    os.umask(mask)
    return 0o666 & ~mask


def _why(e: OSError) -> str:
    return e.strerror or str(e)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temp file and a rename; raise ``ExportError`` with a
    one-line reason if the folder is missing or not writable (nothing is left behind)."""
    path = Path(path)
    folder = path.parent
    if not folder.exists():
        raise ExportError(f"cannot write {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: {folder} is not a folder")
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder")
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    except OSError as e:
        raise ExportError(f"cannot write in {folder}: {_why(e)}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ExportError(f"cannot write {path}: {_why(e)}") from e
    return path
