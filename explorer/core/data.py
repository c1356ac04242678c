"""Training text: loading a corpus, the lecture's 90/10 split, random batches, and the
"Download Tiny Shakespeare" helper.

* ``load_corpus(path, vocab=None)`` reads a UTF-8 text file and encodes it with the char
  tokenizer. Without ``vocab`` the vocabulary is ``sorted(set(text))`` (the lecture's); with one
  (fine-tuning a loaded model) every character must already be in it, or ``VocabularyMismatch``
  names the characters that are not. Anything that is not usable text raises ``CorpusError``
  with a message naming the file and the problem: a missing file, a folder, an empty file, binary
  data, text that is not UTF-8.
* ``Corpus.split(block_size)`` gives the first 90% for training and the last 10% for validation,
  as the lecture does, and refuses a corpus whose parts are shorter than ``block_size + 1``.
* ``get_batch`` draws random windows of ``block_size + 1`` tokens: ``x`` is the first
  ``block_size``, ``y`` the same shifted by one.
* ``download_tiny_shakespeare(url=..., dest=...)`` fetches the char-rnn ``input.txt`` into the
  user's cache folder, checks its size and SHA-256, and writes it atomically.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .tokenizer import CharTokenizer, display_char

TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_SIZE = 1115394
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TRAIN_FRACTION = 0.9


class CorpusError(ValueError):
    """A corpus file cannot be used for training. ``path`` is the file, ``problem`` the reason."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class VocabularyMismatch(CorpusError):
    """The corpus holds characters the model's vocabulary does not have."""

    def __init__(self, path: str | Path | None, unknown: list[str], vocab_size: int):
        self.unknown = unknown
        shown = " ".join(display_char(c) for c in unknown[:20])
        more = f" (and {len(unknown) - 20} more)" if len(unknown) > 20 else ""
        super().__init__(path, f"vocabulary mismatch: the corpus has {len(unknown)} character(s) that the "
                               f"model's {vocab_size}-character vocabulary lacks: {shown}{more}. "
                               "Fine-tune only on text written in the model's alphabet, or train a new model.")


class DownloadError(RuntimeError):
    """The download failed (no network, a server error, or a file that is not the expected one)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Split:
    """The encoded train and validation parts of a corpus (1-D int64 tensors)."""

    train: torch.Tensor
    val: torch.Tensor


@dataclass
class Corpus:
    """A training text, encoded. ``data`` is a 1-D int64 tensor of token ids (N,)."""

    text: str
    tokenizer: CharTokenizer
    data: torch.Tensor
    name: str = "corpus"
    path: str | None = None
    sha256: str = ""
    _split: Split | None = field(default=None, repr=False)

    @classmethod
    def from_text(cls, text: str, *, name: str = "corpus", vocab=None, path: str | Path | None = None,
                  sha256: str | None = None) -> "Corpus":
        """Encode ``text``; with ``vocab`` every character must be in it."""
        if not text:
            raise CorpusError(path, "the corpus is empty")
        if "\x00" in text:
            raise CorpusError(path, "the corpus holds NUL characters: it looks like a binary file, not text")
        if vocab is None:
            tok = CharTokenizer.from_text(text)
        else:
            tok = vocab if isinstance(vocab, CharTokenizer) else CharTokenizer(list(vocab))
            unknown = sorted(set(text) - set(tok.vocab))
            if unknown:
                raise VocabularyMismatch(path, unknown, len(tok))
        stoi = tok.stoi
        data = torch.tensor([stoi[c] for c in text], dtype=torch.long)  # (N,)
        digest = sha256 or sha256_hex(text.encode("utf-8"))
        return cls(text=text, tokenizer=tok, data=data, name=name,
                   path=str(path) if path is not None else None, sha256=digest)

    @property
    def vocab(self) -> list[str]:
        return list(self.tokenizer.vocab)

    def __len__(self) -> int:
        return int(self.data.numel())

    def split(self, block_size: int) -> Split:
        """First 90% train, last 10% validation; each must hold at least ``block_size + 1`` tokens."""
        n = int(TRAIN_FRACTION * len(self))
        train, val = self.data[:n], self.data[n:]
        need = block_size + 1
        if len(val) < need or len(train) < need:
            minimum = need * 10 + 10
            raise CorpusError(self.path or self.name,
                              f"the corpus is too short: {len(self)} characters give a {len(train)}-character "
                              f"training part and a {len(val)}-character validation part (90/10 split), but "
                              f"each needs at least block_size + 1 = {need}; use at least about {minimum:,} "
                              "characters or a smaller block_size")
        if self._split is None or len(self._split.train) != n:
            self._split = Split(train=train, val=val)
        return self._split


def load_corpus(path: str | Path, *, vocab=None) -> Corpus:
    """Read a UTF-8 text file as a ``Corpus`` (see the module docstring for the checks)."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(path, "no such file")
    if path.is_dir():
        raise CorpusError(path, "is a folder; the corpus must be one UTF-8 text file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CorpusError(path, f"cannot read: {e.strerror or e}") from e
    if not raw:
        raise CorpusError(path, "the corpus is empty")
    if b"\x00" in raw[:65536]:
        raise CorpusError(path, "looks like a binary file (it holds NUL bytes), not UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(path, f"is not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at offset {e.start}); "
                                "convert it to UTF-8 first") from e
    if text.startswith("\ufeff"):  # a byte-order mark is not part of the text
        text = text[1:]
    return Corpus.from_text(text, name=path.name, vocab=vocab, path=path, sha256=sha256_hex(raw))


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``data`` (N,): x (B, T) and the targets y (B, T), shifted by one."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = ix[:, None] + torch.arange(block_size + 1)  # (B, T+1)
    chunk = data[offsets]  # (B, T+1)
    return chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()


# ---------------------------------------------------------------------------------------------
# Download Tiny Shakespeare
# ---------------------------------------------------------------------------------------------
def user_cache_dir() -> Path:
    """The per-user cache folder of GPT Explorer (``$GPT_EXPLORER_CACHE`` overrides it)."""
    env = os.environ.get("GPT_EXPLORER_CACHE")
    if env:
        return Path(env)
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gpt-explorer"


def download_tiny_shakespeare(url: str = TINY_SHAKESPEARE_URL, dest: str | Path | None = None, *,
                              expected_size: int | None = TINY_SHAKESPEARE_SIZE,
                              expected_sha256: str | None = TINY_SHAKESPEARE_SHA256,
                              timeout: float = 30.0, progress=None) -> Path:
    """Fetch Tiny Shakespeare (or the file at ``url``) to ``dest`` and return its path.

    ``dest`` defaults to ``user_cache_dir() / "tinyshakespeare.txt"``. A file already there with the
    expected checksum is reused without a download. The download is checked against
    ``expected_size`` and ``expected_sha256`` (``None`` skips a check) and only then moved into
    place, so a failed or wrong download never leaves a partial file. ``progress(done, total)`` is
    called as bytes arrive (``total`` is ``None`` when the server does not say).
    Raises ``DownloadError`` with a clear message when offline or when the file is not the expected one.
    """
    dest = Path(dest) if dest is not None else user_cache_dir() / "tinyshakespeare.txt"
    if dest.is_file() and expected_sha256 is not None:
        if sha256_hex(dest.read_bytes()) == expected_sha256:
            return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the folder {dest.parent}: {e.strerror or e}") from e
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            total = int(total) if total and str(total).isdigit() else None
            chunks, done = [], 0
            while True:
                chunk = resp.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                done += len(chunk)
                if expected_size is not None and done > 4 * expected_size + 65536:
                    raise DownloadError(f"{url}: the server sends far more than the expected "
                                        f"{expected_size:,} bytes; this is not the expected file")
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"could not download {url}: the server answered {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"could not download {url}: no network connection or the server is unreachable "
                            f"({e.reason}). Download the file by other means and pass it as the corpus.") from e
    except (OSError, ValueError) as e:
        raise DownloadError(f"could not download {url}: {e}") from e
    data = b"".join(chunks)
    if expected_size is not None and len(data) != expected_size:
        raise DownloadError(f"{url}: got {len(data):,} bytes, expected {expected_size:,}; the download is "
                            "incomplete or not the expected file (nothing was saved)")
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
        raise DownloadError(f"{url}: the SHA-256 checksum does not match the expected file (nothing was saved)")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest
