"""Character-level tokenizer, built as the lecture and nanoGPT build it.

The vocabulary is ``sorted(set(corpus))``: one token per distinct character, id = index.

Unknown characters (not in the vocabulary) have a stated policy:

* ``encode(text)`` raises ``UnknownCharacterError`` naming the characters and their positions;
* ``encode_lenient(text)`` skips them and reports them, which is what ``model.trace`` uses, so a
  prompt with an unknown character never crashes anything: the known characters are traced and
  the unknown ones are listed in ``Trace.unknown``.
"""
from __future__ import annotations

from dataclasses import dataclass

# The 65 characters of Tiny Shakespeare (the char-rnn ``input.txt``), in vocabulary order.
TINY_SHAKESPEARE_VOCAB: tuple[str, ...] = tuple("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class UnknownCharacterError(ValueError):
    """Raised by strict encoding when the text holds characters outside the vocabulary."""

    def __init__(self, unknown: list[tuple[int, str]]):
        self.unknown = unknown
        shown = ", ".join(f"{display_char(c)!s} at {i}" for i, c in unknown[:10])
        more = f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""
        super().__init__(f"{len(unknown)} character(s) not in the vocabulary: {shown}{more}")


def display_char(ch: str) -> str:
    """A visible form of a character: ⏎ for newline, ␣ for space, ⇥ for tab, U+hhhh for other
    invisible characters."""
    if ch == "\n":
        return "⏎"
    if ch == " ":
        return "␣"
    if ch == "\t":
        return "⇥"
    if ch == "\r":
        return "␍"
    if not ch.isprintable():
        return f"U+{ord(ch):04X}"
    return ch


@dataclass(frozen=True)
class Encoded:
    """Result of lenient encoding: ids of the known characters, the original index of each, and
    the unknown characters as (index in text, character)."""

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    unknown: tuple[tuple[int, str], ...]


class CharTokenizer:
    """Maps characters to ids and back. ``vocab[i]`` is the character with id ``i``."""

    def __init__(self, vocab: list[str] | tuple[str, ...]):
        vocab = list(vocab)
        if not vocab:
            raise ValueError("the vocabulary is empty")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has duplicate entries")
        for tok in vocab:
            if not isinstance(tok, str) or len(tok) != 1:
                raise ValueError(f"a character vocabulary holds single characters, got {tok!r}")
        self.vocab: tuple[str, ...] = tuple(vocab)
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(vocab)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """The lecture's vocabulary: the sorted set of the corpus's characters."""
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.vocab)

    def __contains__(self, ch: str) -> bool:
        return ch in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and other.vocab == self.vocab

    def __hash__(self) -> int:
        return hash(self.vocab)

    def __repr__(self) -> str:
        return f"CharTokenizer({len(self.vocab)} chars)"

    def encode(self, text: str) -> list[int]:
        """Strict: every character must be in the vocabulary."""
        unknown = [(i, ch) for i, ch in enumerate(text) if ch not in self.stoi]
        if unknown:
            raise UnknownCharacterError(unknown)
        return [self.stoi[ch] for ch in text]

    def encode_lenient(self, text: str) -> Encoded:
        """Skip unknown characters and report them."""
        ids, positions, unknown = [], [], []
        stoi = self.stoi
        for i, ch in enumerate(text):
            idx = stoi.get(ch)
            if idx is None:
                unknown.append((i, ch))
            else:
                ids.append(idx)
                positions.append(i)
        return Encoded(tuple(ids), tuple(positions), tuple(unknown))

    def decode(self, ids) -> str:
        n = len(self.vocab)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is outside the vocabulary (size {n})")
            out.append(self.vocab[i])
        return "".join(out)
