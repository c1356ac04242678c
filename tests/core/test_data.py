"""Corpus loading, the 90/10 split, batches, and the Tiny Shakespeare download (against a local server)."""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from functools import partial

import pytest
import torch

from explorer.core.data import (Corpus, CorpusError, DownloadError, VocabularyMismatch, download_tiny_shakespeare,
                                get_batch, load_corpus, user_cache_dir)


def test_load_corpus_builds_lecture_vocab_and_checksum(corpus_file, corpus_text):
    c = load_corpus(corpus_file)
    assert c.vocab == sorted(set(corpus_text))
    assert len(c) == len(corpus_text)
    assert c.tokenizer.decode(c.data.tolist()) == corpus_text
    assert c.sha256 == hashlib.sha256(corpus_file.read_bytes()).hexdigest()
    assert c.name == "corpus.txt"


def test_split_is_first_90_percent_train_last_10_percent_val(corpus_file):
    c = load_corpus(corpus_file)
    s = c.split(block_size=16)
    n = int(0.9 * len(c))
    assert torch.equal(s.train, c.data[:n])
    assert torch.equal(s.val, c.data[n:])


def test_get_batch_windows_are_contiguous_and_targets_shifted():
    data = torch.arange(1000)  # ids = positions, so every window must be consecutive
    g = torch.Generator().manual_seed(0)
    x, y = get_batch(data, 8, 16, g)
    assert x.shape == y.shape == (8, 16)
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(8, 15, dtype=torch.long))
    assert torch.equal(y, x + 1)
    assert int(y.max()) <= 999 and int(x.min()) >= 0
    x2, _ = get_batch(data, 8, 16, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)  # the seed fixes the batch


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"hello\x00\x01\x02 world" * 10, "binary"),
    ("caf\u00e9 au lait ".encode("latin-1") * 10, "not UTF-8"),
])
def test_bad_corpus_files_are_refused_clearly(tmp_path, content, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as err:
        load_corpus(p)
    assert str(p) in str(err.value)


def test_directory_and_missing_file_are_refused(tmp_path):
    with pytest.raises(CorpusError, match="folder"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus(tmp_path / "nope.txt")


def test_corpus_shorter_than_block_size_plus_one_is_refused(tmp_path):
    p = tmp_path / "short.txt"
    p.write_text("To be, or not to be: that is the question." * 2, encoding="utf-8")  # 86 chars → val 9
    c = load_corpus(p)
    with pytest.raises(CorpusError, match=r"too short.*block_size \+ 1 = 17"):
        c.split(block_size=16)
    c.split(block_size=4)  # long enough for a smaller context


def test_vocabulary_mismatch_names_the_missing_characters(corpus_text):
    vocab = sorted(set(corpus_text))
    with pytest.raises(VocabularyMismatch, match="vocabulary mismatch") as err:
        Corpus.from_text("Zebra & €uro", vocab=vocab)
    assert "€" in str(err.value) and "Z" in str(err.value)
    sub = Corpus.from_text("First Citizen", vocab=vocab)  # a subset of the alphabet is fine
    assert sub.vocab == vocab and sub.tokenizer.decode(sub.data.tolist()) == "First Citizen"


# ---- download ---------------------------------------------------------------------------------
@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


PAYLOAD = ("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 300).encode("utf-8")
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_from_local_server_checks_and_caches(http_server, tmp_path, monkeypatch):
    root, base = http_server
    (root / "input.txt").write_bytes(PAYLOAD)
    monkeypatch.setenv("GPT_EXPLORER_CACHE", str(tmp_path / "cache"))
    seen = []
    path = download_tiny_shakespeare(f"{base}/input.txt", expected_size=len(PAYLOAD), expected_sha256=PAYLOAD_SHA,
                                     progress=lambda done, total: seen.append((done, total)))
    assert path == user_cache_dir() / "tinyshakespeare.txt" == tmp_path / "cache" / "tinyshakespeare.txt"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    (root / "input.txt").unlink()  # a verified file already in the cache is reused, no request made
    assert download_tiny_shakespeare(f"{base}/input.txt", expected_sha256=PAYLOAD_SHA,
                                     expected_size=len(PAYLOAD)) == path


def test_download_with_wrong_checksum_or_size_saves_nothing(http_server, tmp_path):
    root, base = http_server
    (root / "input.txt").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "ts.txt"
    with pytest.raises(DownloadError, match="SHA-256"):
        download_tiny_shakespeare(f"{base}/input.txt", dest, expected_size=len(PAYLOAD), expected_sha256="0" * 64)
    with pytest.raises(DownloadError, match="expected 1,115,394"):
        download_tiny_shakespeare(f"{base}/input.txt", dest)  # the real file's size
    with pytest.raises(DownloadError, match="404"):
        download_tiny_shakespeare(f"{base}/missing.txt", dest, expected_sha256=None, expected_size=None)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial or temp file left


def test_download_without_network_gives_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="no network connection"):
        download_tiny_shakespeare(f"http://127.0.0.1:{port}/input.txt", tmp_path / "x.txt", timeout=5)
    assert not (tmp_path / "x.txt").exists()


def test_download_from_file_url(tmp_path):
    src = tmp_path / "src.txt"
    src.write_bytes(PAYLOAD)
    dest = download_tiny_shakespeare(src.as_uri(), tmp_path / "dl" / "ts.txt", expected_size=len(PAYLOAD),
                                     expected_sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD
    assert load_corpus(dest).text == PAYLOAD.decode()
