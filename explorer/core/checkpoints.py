"""Loading and saving checkpoints, safely, in every format users have.

* **Native** ``.safetensors``: the weights, plus JSON metadata ``format``, ``config``, ``vocab`` and
  ``info`` (training command, losses, corpus, ...). Training checkpoints add the optimizer state as
  tensors named ``optim.*``. Written atomically: a temp file in the same folder, fsync, rename.
* **Lecture** ``torch.save(model.state_dict(), path)`` from the "GPT from scratch" script: per-head
  ``blocks.{i}.sa.heads.{h}.{key,query,value}.weight``; the config is inferred from the shapes and
  the vocabulary comes from ``corpus=`` (the training text). Without a corpus and with 65 tokens,
  the Tiny Shakespeare alphabet is assumed, with a warning.
* **nanoGPT** ``ckpt.pt`` ``{model, model_args, optimizer, iter_num, best_val_loss, config}``, keys
  with or without torch.compile's ``_orig_mod.`` prefix; the vocabulary comes from ``meta.pkl``
  beside the checkpoint, at ``../data/<dataset>/meta.pkl``, or ``meta=``.

Security: ``.pt`` files are read with ``torch.load(weights_only=True)`` only, and ``meta.pkl`` with
an unpickler that admits no class or function at all (only dicts, lists, ints, strs and the like),
so a file that would run code is refused before anything in it runs.

Every malformed input raises ``CheckpointError`` with a message naming the file and the problem.
"""
from __future__ import annotations

import codecs
import io
import json
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from .api import ExplorerModel
from .model import GPT, GPTConfig
from .tokenizer import TINY_SHAKESPEARE_VOCAB, CharTokenizer

NATIVE_FORMAT = "gpt-explorer/1"
OPTIM_PREFIX = "optim."
DEFAULT_MODEL_NAME = "default_model.safetensors"


class CheckpointError(Exception):
    """A checkpoint or vocabulary file could not be used. ``needs`` is ``"corpus"`` or ``"meta"``
    when the file itself is fine but its vocabulary must be supplied."""

    def __init__(self, path: str | Path | None, problem: str, needs: str | None = None):
        self.path = str(path) if path is not None else None
        self.problem = problem
        self.needs = needs
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def resources_dir() -> Path:
    env = os.environ.get("GPT_EXPLORER_RESOURCES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "resources"


def default_model_path() -> Path:
    return resources_dir() / DEFAULT_MODEL_NAME


# ---------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------
def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` to produce the file, then rename it over ``path``. On any failure
    (a full disk, an unwritable folder) the temp file is removed and ``path`` is left as it was."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CheckpointError(path, f"folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise CheckpointError(path, f"cannot write in {folder}: {e.strerror or e}") from e
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise CheckpointError(path, f"could not write the file: {e.strerror or e}") from e
        raise
    return path


# ---------------------------------------------------------------------------------------------
# native format
# ---------------------------------------------------------------------------------------------
def native_state(module: GPT) -> dict[str, torch.Tensor]:
    """The module's weights as safetensors wants them: contiguous, and a tied lm_head stored once."""
    sd = module.state_dict()
    if module.config.tie_weights:
        sd.pop("lm_head.weight", None)
    return {k: v.detach().cpu().contiguous() for k, v in sd.items()}


def save_native(path: str | Path, module: GPT, vocab, *, info: Mapping[str, Any] | None = None,
                extra_tensors: Mapping[str, torch.Tensor] | None = None,
                extra_meta: Mapping[str, Any] | None = None) -> Path:
    """Write the native format atomically. ``extra_tensors`` (e.g. optimizer state) are stored
    beside the weights; ``extra_meta`` is JSON metadata stored under its own keys."""
    from safetensors.torch import save_file

    tensors = native_state(module)
    for k, v in (extra_tensors or {}).items():
        tensors[k] = v.detach().cpu().contiguous()
    metadata = {
        "format": NATIVE_FORMAT,
        "config": json.dumps(module.config.to_dict()),
        "vocab": json.dumps(list(vocab)),
        "info": json.dumps(dict(info or {})),
    }
    for k, v in (extra_meta or {}).items():
        metadata[k] = json.dumps(v)
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_native(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All tensors and the decoded JSON metadata of a native file."""
    from safetensors import safe_open

    path = Path(path)
    try:
        tensors = {}
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except Exception as e:  # SafetensorError, OSError, ...
        raise CheckpointError(path, f"not a readable safetensors file ({_short(e)})") from e
    if raw_meta.get("format") != NATIVE_FORMAT:
        raise CheckpointError(path, "safetensors file without GPT Explorer metadata (config and vocabulary); "
                                    "save it with explorer's model.save()")
    meta = {}
    for k, v in raw_meta.items():
        if k == "format":
            meta[k] = v
            continue
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError as e:
            raise CheckpointError(path, f"metadata field {k!r} is not valid JSON") from e
    return tensors, meta


def _load_native(path: Path) -> ExplorerModel:
    tensors, meta = read_native(path)
    for key in ("config", "vocab"):
        if key not in meta:
            raise CheckpointError(path, f"metadata has no {key!r}")
    try:
        cfg = GPTConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(path, f"invalid config in metadata: {e}") from e
    weights = {k: v for k, v in tensors.items() if not k.startswith(OPTIM_PREFIX)}
    if cfg.tie_weights:
        weights.setdefault("lm_head.weight", weights.get("token_embedding_table.weight"))
    module = _build(path, cfg, weights)
    info = meta.get("info") or {}
    if not isinstance(info, dict):
        raise CheckpointError(path, "metadata field 'info' is not a JSON object")
    return _wrap(path, module, meta["vocab"], info=info, vocab_source="its metadata")


# ---------------------------------------------------------------------------------------------
# building and validating
# ---------------------------------------------------------------------------------------------
def _short(e: BaseException, limit: int = 200) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if len(msg) <= limit else msg[:limit] + "…"


def _build(path: Path, cfg: GPTConfig, weights: Mapping[str, torch.Tensor]) -> GPT:
    module = GPT(cfg)
    expected = module.state_dict()
    missing = [k for k in expected if k not in weights or weights[k] is None]
    if missing:
        raise CheckpointError(path, f"missing weights: {', '.join(missing[:6])}"
                                    + (f" (and {len(missing) - 6} more)" if len(missing) > 6 else ""))
    unexpected = [k for k in weights if k not in expected]
    if unexpected:
        raise CheckpointError(path, f"unexpected weights: {', '.join(unexpected[:6])}")
    for k, ref in expected.items():
        w = weights[k]
        if not isinstance(w, torch.Tensor):
            raise CheckpointError(path, f"{k} is not a tensor")
        if tuple(w.shape) != tuple(ref.shape):
            raise CheckpointError(path, f"{k} has shape {tuple(w.shape)}, expected {tuple(ref.shape)} "
                                        f"for this config")
        if not w.is_floating_point():
            raise CheckpointError(path, f"{k} has dtype {w.dtype}, expected floating point")
    state = {k: weights[k].to(torch.float32) for k in expected}
    module.load_state_dict(state, strict=True)
    if cfg.tie_weights:
        module.lm_head.weight = module.token_embedding_table.weight
    bad = [k for k, v in module.state_dict().items() if not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(path, f"weights contain NaN or infinity: {', '.join(bad[:4])}")
    return module.eval()


def _wrap(path: Path | None, module: GPT, vocab, info=None, name: str | None = None,
          vocab_source: str | Path | None = None) -> ExplorerModel:
    try:
        vocab = list(vocab)
        CharTokenizer(vocab)
    except (TypeError, ValueError) as e:
        raise CheckpointError(path, f"invalid vocabulary: {e}") from e
    if len(vocab) != module.config.vocab_size:
        source = f" ({vocab_source})" if vocab_source is not None else ""
        raise CheckpointError(path, f"vocabulary size mismatch: the vocabulary{source} has {len(vocab)} characters "
                                    f"but the token embedding has {module.config.vocab_size} rows")
    if name is None:
        name = path.stem if path is not None else "model"
        if name in ("ckpt", "model", "checkpoint") and path is not None and path.parent.name:
            name = f"{path.parent.name}/{path.stem}"
    return ExplorerModel(module, vocab, name=name, source=path, info=info)


# ---------------------------------------------------------------------------------------------
# torch files: the lecture's state_dict and nanoGPT's ckpt.pt
# ---------------------------------------------------------------------------------------------
def _torch_load(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(path, "refused: the file holds Python objects other than tensors and plain "
                                    f"data, which could run code when loaded ({_short(e, 160)})") from e
    except Exception as e:
        raise CheckpointError(path, f"not a readable PyTorch checkpoint (truncated or corrupt?): {_short(e)}") from e


def _require_tensors(path: Path, sd: Mapping[str, Any]) -> None:
    bad = [str(k) for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(path, f"entries that are not named tensors: {', '.join(bad[:5])}")


def _lecture_to_native(path: Path, sd: Mapping[str, Any]) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    _require_tensors(path, sd)
    try:
        V, C = sd["token_embedding_table.weight"].shape
        block_size = sd["position_embedding_table.weight"].shape[0]
    except (KeyError, AttributeError, ValueError) as e:
        raise CheckpointError(path, f"lecture state_dict without embedding tables ({_short(e)})") from e
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
    if not layers or layers != list(range(len(layers))):
        raise CheckpointError(path, "lecture state_dict has no blocks.{i} or a gap in their numbering")
    heads = sorted({int(m.group(1)) for k in sd if (m := re.match(r"blocks\.0\.sa\.heads\.(\d+)\.key\.weight$", k))})
    if not heads:
        raise CheckpointError(path, "lecture state_dict has no blocks.0.sa.heads.{h}.key.weight")
    n_head = len(heads)
    for k in sd:  # every block must have the same heads as block 0
        m = re.match(r"blocks\.(\d+)\.sa\.heads\.(\d+)\.(\w+)", k)
        if m and (int(m.group(2)) >= n_head or m.group(3) not in ("key", "query", "value", "tril")):
            raise CheckpointError(path, f"unexpected weight {k!r}: block 0 has {n_head} heads")
    if C % n_head:
        raise CheckpointError(path, f"n_embd {C} is not divisible by the {n_head} heads found")
    cfg = GPTConfig.lecture(vocab_size=int(V), block_size=int(block_size), n_layer=len(layers),
                            n_head=n_head, n_embd=int(C))
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.endswith(".tril") or ".sa.heads." in k:
            continue
        out[k] = v
    hs = int(C) // n_head
    for i in layers:
        parts = []
        for kind in ("query", "key", "value"):
            for h in range(n_head):
                key = f"blocks.{i}.sa.heads.{h}.{kind}.weight"
                if key not in sd:
                    raise CheckpointError(path, f"missing weights: {key}")
                if tuple(sd[key].shape) != (hs, int(C)):
                    raise CheckpointError(path, f"{key} has shape {tuple(sd[key].shape)}, expected {(hs, int(C))} "
                                                f"for {n_head} heads of size {hs}")
                parts.append(sd[key])
        try:
            out[f"blocks.{i}.sa.qkv.weight"] = torch.cat(parts, dim=0)  # (3C, C): [q heads | k heads | v heads]
        except RuntimeError as e:
            raise CheckpointError(path, f"block {i}: head weights have inconsistent shapes ({_short(e)})") from e
    return cfg, out


_NANO_MAP = [
    (r"transformer\.wte\.weight", "token_embedding_table.weight"),
    (r"transformer\.wpe\.weight", "position_embedding_table.weight"),
    (r"transformer\.h\.(\d+)\.ln_1\.(weight|bias)", r"blocks.\1.ln1.\2"),
    (r"transformer\.h\.(\d+)\.ln_2\.(weight|bias)", r"blocks.\1.ln2.\2"),
    (r"transformer\.h\.(\d+)\.attn\.c_attn\.(weight|bias)", r"blocks.\1.sa.qkv.\2"),
    (r"transformer\.h\.(\d+)\.attn\.c_proj\.(weight|bias)", r"blocks.\1.sa.proj.\2"),
    (r"transformer\.h\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"blocks.\1.ffwd.net.0.\2"),
    (r"transformer\.h\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"blocks.\1.ffwd.net.2.\2"),
    (r"transformer\.ln_f\.(weight|bias)", r"ln_f.\1"),
    (r"lm_head\.weight", "lm_head.weight"),
]


def _nanogpt_to_native(path: Path, sd: Mapping[str, Any], args: Mapping[str, Any]) -> tuple[GPTConfig, dict]:
    _require_tensors(path, sd)
    sd = {(k[len("_orig_mod."):] if k.startswith("_orig_mod.") else k): v for k, v in sd.items()}
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if re.fullmatch(r"transformer\.h\.\d+\.attn\.bias", k):  # the causal-mask buffer of old nanoGPT
            continue
        for pat, repl in _NANO_MAP:
            if re.fullmatch(pat, k):
                out[re.sub(pat, repl, k)] = v
                break
        else:
            raise CheckpointError(path, f"unexpected weight {k!r} in a nanoGPT checkpoint")
    try:
        wte = out["token_embedding_table.weight"]
        V, C = wte.shape
        block_size = out["position_embedding_table.weight"].shape[0]
    except (KeyError, AttributeError, ValueError) as e:
        raise CheckpointError(path, "nanoGPT checkpoint without transformer.wte / transformer.wpe") from e
    n_layer = len({k.split(".")[1] for k in out if k.startswith("blocks.")})
    has_bias = "ln_f.bias" in out
    if "bias" in args and bool(args["bias"]) != has_bias:
        raise CheckpointError(path, f"model_args['bias'] = {args['bias']} but the weights "
                                    f"{'have' if has_bias else 'have no'} biases")
    n_head = args.get("n_head")
    if not isinstance(n_head, int) or n_head < 1:
        raise CheckpointError(path, "nanoGPT checkpoint without model_args['n_head']")
    for key, value in (("n_layer", n_layer), ("n_embd", int(C)), ("vocab_size", int(V)), ("block_size", int(block_size))):
        if key in args and args[key] != value:
            raise CheckpointError(path, f"model_args[{key!r}] = {args[key]} but the weights say {value}")
    try:
        cfg = GPTConfig.nanogpt(bias=has_bias, vocab_size=int(V), block_size=int(block_size), n_layer=n_layer,
                                n_head=int(n_head), n_embd=int(C))
    except ValueError as e:
        raise CheckpointError(path, f"inconsistent model_args: {e}") from e
    if "lm_head.weight" in out and not torch.equal(out["lm_head.weight"], wte):
        cfg = GPTConfig.nanogpt(bias=has_bias, vocab_size=int(V), block_size=int(block_size), n_layer=n_layer,
                                n_head=int(n_head), n_embd=int(C), tie_weights=False)
    out.setdefault("lm_head.weight", wte)
    return cfg, out


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a class or function."""


class _NoClassesUnpickler(pickle.Unpickler):
    """Admits plain data only: any reference to a class or function is refused, so nothing runs."""

    def find_class(self, module: str, name: str):
        raise _ForbiddenGlobal(f"it refers to {module}.{name}, which could run code; only plain data "
                               "(dicts, lists, ints, strs) is allowed")


def _plain(obj: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return True
    if isinstance(obj, (list, tuple)):
        return all(_plain(x, depth + 1) for x in obj)
    if isinstance(obj, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in obj.items())
    return False


def read_meta_pkl(path: str | Path) -> list[str]:
    """The vocabulary (``itos`` in id order) from nanoGPT's ``meta.pkl``, read without running code."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(path, f"cannot read: {e.strerror or e}") from e
    try:
        meta = _NoClassesUnpickler(io.BytesIO(data)).load()
    except _ForbiddenGlobal as e:
        raise CheckpointError(path, f"refused: {_short(e)}") from e
    except Exception as e:  # truncated or not a pickle at all
        raise CheckpointError(path, f"not a readable meta.pkl: {_short(e)}") from e
    if not isinstance(meta, dict) or not _plain(meta):
        raise CheckpointError(path, "meta.pkl must hold a dict of plain data {vocab_size, itos, stoi}")
    itos = meta.get("itos")
    if not isinstance(itos, dict) or not itos:
        raise CheckpointError(path, "meta.pkl has no 'itos' mapping")
    n = len(itos)
    if sorted(itos) != list(range(n)):
        raise CheckpointError(path, "meta.pkl 'itos' keys are not the ids 0..n-1")
    if "vocab_size" in meta and meta["vocab_size"] != n:
        raise CheckpointError(path, f"meta.pkl says vocab_size {meta['vocab_size']} but 'itos' has {n} entries")
    return [itos[i] for i in range(n)]


def _find_meta(path: Path, ckpt: Mapping[str, Any], meta: str | Path | None) -> Path | None:
    if meta is not None:
        return Path(meta)
    candidates = [path.parent / "meta.pkl"]
    cfg = ckpt.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("dataset"), str):
        candidates.append(path.parent.parent / "data" / cfg["dataset"] / "meta.pkl")
    return next((c for c in candidates if c.is_file()), None)


def _vocab_from_corpus(corpus: str | Path) -> list[str]:
    corpus = Path(corpus)
    try:
        text = corpus.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(corpus, "the corpus is not UTF-8 text") from e
    except OSError as e:
        raise CheckpointError(corpus, f"cannot read the corpus: {e.strerror or e}") from e
    if not text:
        raise CheckpointError(corpus, "the corpus is empty")
    return sorted(set(text))


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------
def _sniff(path: Path) -> str:
    """What kind of file this is, from its first bytes: "safetensors", "torch", "text" or "unknown"."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise CheckpointError(path, "the file is empty")
    # safetensors: a little-endian u64 header length, then the JSON header. Checked first: the length's
    # low byte can be 0x80, which would otherwise look like the start of a pickle.
    if len(head) >= 9 and head[8:9] == b"{" and head[5:8] == b"\0\0\0":
        header_end, size = 8 + int.from_bytes(head[:8], "little"), path.stat().st_size
        if header_end > size:
            raise CheckpointError(path, f"not a readable safetensors file (truncated: its header ends at byte "
                                        f"{header_end} but the file has {size} bytes)")
        return "safetensors"
    if head[:4] == b"PK\x03\x04":  # torch.save's zip format
        return "torch"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # a pickle (legacy torch.save, protocol 2+)
        return "torch"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a character may be cut at byte 16
    except UnicodeDecodeError:
        return "unknown"
    return "text"


def load(path: str | Path | None = None, *, corpus: str | Path | None = None,
         meta: str | Path | None = None) -> ExplorerModel:
    """Load a model. ``path=None`` gives the bundled default model.

    ``corpus`` supplies a lecture checkpoint's training text (its vocabulary is ``sorted(set(text))``);
    ``meta`` points at a nanoGPT ``meta.pkl``. Raises ``CheckpointError`` on any malformed input.
    """
    if path is None:
        path = default_model_path()
        if not path.is_file():
            raise CheckpointError(path, "the bundled default model is missing; train one with "
                                        "`python -m explorer train` or pass a checkpoint path")
    path = Path(path)
    try:
        return _load_file(path, corpus, meta)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        # a layout none of the checks above foresaw: still one exception type, naming the file
        raise CheckpointError(path, f"malformed checkpoint: {type(e).__name__}: {_short(e)}") from e


def _load_file(path: Path, corpus: str | Path | None, meta: str | Path | None) -> ExplorerModel:
    if path.is_dir():
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(path, "no such file")
    try:
        kind = _sniff(path)
    except OSError as e:
        raise CheckpointError(path, f"cannot read: {e.strerror or e}") from e
    if kind == "safetensors":
        return _load_native(path)
    if kind == "text":
        raise CheckpointError(path, "is a text file, not a checkpoint (to train on it, use it as a corpus)")
    if kind == "unknown":
        raise CheckpointError(path, "is not a checkpoint: expected .safetensors, a lecture state_dict or nanoGPT ckpt.pt")
    obj = _torch_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"holds a {type(obj).__name__}, expected a state_dict or a nanoGPT checkpoint dict")
    if "model" in obj and "model_args" in obj:
        if not isinstance(obj["model"], dict) or not isinstance(obj["model_args"], dict):
            raise CheckpointError(path, "nanoGPT checkpoint with a malformed 'model' or 'model_args'")
        cfg, weights = _nanogpt_to_native(path, obj["model"], obj["model_args"])
        module = _build(path, cfg, weights)
        meta_path = _find_meta(path, obj, meta)
        if meta_path is None:
            raise CheckpointError(path, "nanoGPT checkpoint: its meta.pkl (the vocabulary) was not found beside "
                                        "it or in ../data/<dataset>/; pass meta=", needs="meta")
        vocab = read_meta_pkl(meta_path)
        info = {"format": "nanogpt", "meta": str(meta_path), "iter_num": obj.get("iter_num"),
                "best_val_loss": float(obj["best_val_loss"]) if isinstance(obj.get("best_val_loss"), (int, float, torch.Tensor)) else None}
        return _wrap(path, module, vocab, info=info, vocab_source=meta_path)
    if "token_embedding_table.weight" in obj:
        cfg, weights = _lecture_to_native(path, obj)
        module = _build(path, cfg, weights)
        if corpus is not None:
            vocab = _vocab_from_corpus(corpus)
        elif cfg.vocab_size == len(TINY_SHAKESPEARE_VOCAB):
            warnings.warn(f"{path}: no corpus given; assuming the Tiny Shakespeare alphabet (65 characters)",
                          stacklevel=3)
            vocab = list(TINY_SHAKESPEARE_VOCAB)
        else:
            raise CheckpointError(path, f"lecture checkpoint with {cfg.vocab_size} tokens: pass the training text "
                                        "as corpus= to rebuild its vocabulary", needs="corpus")
        return _wrap(path, module, vocab, info={"format": "lecture",
                                                "corpus": str(corpus) if corpus is not None else None},
                     vocab_source=corpus)
    if any(k.startswith(("transformer.", "_orig_mod.transformer.")) for k in obj):
        raise CheckpointError(path, "a bare nanoGPT state_dict: save the full ckpt.pt (with model_args) instead")
    keys = ", ".join(list(obj)[:5])
    raise CheckpointError(path, f"unrecognised checkpoint layout (keys: {keys})")
