"""Every bad input gives one exception type, ``CheckpointError``, with a message naming the file and the
problem; files that would run code are refused and nothing in them runs; a failed save leaves the
previous file intact and no temp file behind."""
from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import explorer
from explorer import CheckpointError
from explorer.core.checkpoints import atomic_write, read_meta_pkl, read_native
from reference_models import LectureGPT, NanoGPT, randomize_reference, save_nanogpt, write_meta


class RunsCode:
    """Unpickling this object writes a marker file: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def _error(path, **kw) -> CheckpointError:
    with pytest.raises(CheckpointError) as err:
        explorer.load(path, **kw)
    msg = str(err.value)
    assert str(path) in msg, f"the message should name the file: {msg}"
    assert "\n" not in msg and len(msg) < 400
    return err.value


@pytest.fixture
def lecture_file(tmp_path, corpus_text):
    ref = LectureGPT(len(set(corpus_text)), n_embd=8, n_head=2, n_layer=1, block_size=8)
    randomize_reference(ref)
    path = tmp_path / "lecture.pt"
    torch.save(ref.state_dict(), path)
    return path


# ---- files that are not checkpoints ---------------------------------------------------------------
def test_not_a_checkpoint(tmp_path):
    assert "folder" in _error(tmp_path).problem
    assert "no such file" in _error(tmp_path / "missing.pt").problem
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "empty" in _error(tmp_path / "empty.pt").problem
    (tmp_path / "notes.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak. Ça va.\n")
    assert "text file" in _error(tmp_path / "notes.txt").problem
    (tmp_path / "ç.txt").write_text("ééééééééé")  # a 2-byte character cut by the 16-byte sniff
    assert "text file" in _error(tmp_path / "ç.txt").problem
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)) * 4)
    assert "not a checkpoint" in _error(tmp_path / "noise.bin").problem


def test_truncated_files(tmp_path, tiny_model, lecture_file):
    native = tiny_model.save(tmp_path / "model.safetensors")
    data = native.read_bytes()
    for cut in (len(data) // 2, 12):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        assert "not a readable safetensors file" in _error(tmp_path / "cut.safetensors").problem
    data = lecture_file.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error(tmp_path / "cut.pt").problem


def test_foreign_safetensors_and_bad_metadata(tmp_path, tiny_model):
    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    assert "without GPT Explorer metadata" in _error(tmp_path / "other.safetensors").problem
    path = tiny_model.save(tmp_path / "m.safetensors")
    tensors, meta = read_native(path)
    raw = {"format": meta["format"], "config": '{"n_embd": 32', "vocab": "[]", "info": "{}"}
    save_file(tensors, tmp_path / "badjson.safetensors", metadata=raw)
    assert "not valid JSON" in _error(tmp_path / "badjson.safetensors").problem


def _native_variant(tmp_path, tiny_model, name, *, drop=None, config=None, vocab=None):
    import json

    path = tiny_model.save(tmp_path / "base.safetensors")
    tensors, meta = read_native(path)
    if drop:
        tensors.pop(drop)
    cfg = dict(meta["config"], **(config or {}))
    raw = {"format": meta["format"], "config": json.dumps(cfg), "info": "{}",
           "vocab": json.dumps(vocab if vocab is not None else meta["vocab"])}
    out = tmp_path / name
    save_file(tensors, out, metadata=raw)
    return out


def test_wrong_shapes(tmp_path, tiny_model, corpus_text):
    path = _native_variant(tmp_path, tiny_model, "shapes.safetensors", config={"block_size": 64})
    assert "position_embedding_table.weight has shape (32, 32), expected (64, 32)" in _error(path).problem
    ref = LectureGPT(len(set(corpus_text)), n_embd=8, n_head=2, n_layer=1, block_size=8)
    sd = ref.state_dict()
    sd["ln_f.weight"] = torch.ones(7)
    torch.save(sd, tmp_path / "lnf.pt")
    assert "ln_f.weight has shape (7,), expected (8,)" in _error(tmp_path / "lnf.pt", corpus=None).problem
    sd = ref.state_dict()
    sd["blocks.0.sa.heads.1.value.weight"] = torch.ones(3, 8)
    torch.save(sd, tmp_path / "head.pt")
    assert "blocks.0.sa.heads.1.value.weight has shape (3, 8), expected (4, 8)" in _error(tmp_path / "head.pt").problem
    nano = NanoGPT(20, n_embd=8, n_head=2, n_layer=1, block_size=8)
    nano.model_args["n_embd"] = 16
    ckpt = save_nanogpt(tmp_path / "nano", nano)
    assert "model_args['n_embd'] = 16 but the weights say 8" in _error(ckpt).problem
    nano = NanoGPT(20, n_embd=8, n_head=3, n_layer=1, block_size=8)
    ckpt = save_nanogpt(tmp_path / "nano3", nano)
    assert "divisible" in _error(ckpt).problem


def test_missing_and_unexpected_keys(tmp_path, tiny_model, corpus_text, corpus_file):
    path = _native_variant(tmp_path, tiny_model, "missing.safetensors", drop="blocks.1.ln2.weight")
    assert "missing weights: blocks.1.ln2.weight" in _error(path).problem
    ref = LectureGPT(len(set(corpus_text)), n_embd=8, n_head=2, n_layer=2, block_size=8)
    for drop, expect in (("ln_f.bias", "missing weights: ln_f.bias"),
                         ("blocks.1.sa.heads.1.value.weight", "missing weights: blocks.1.sa.heads.1.value.weight"),
                         ("position_embedding_table.weight", "without embedding tables")):
        sd = ref.state_dict()
        sd.pop(drop)
        torch.save(sd, tmp_path / "drop.pt")
        assert expect in _error(tmp_path / "drop.pt", corpus=corpus_file).problem
    sd = ref.state_dict()
    sd["blocks.1.sa.heads.2.key.weight"] = torch.zeros(4, 8)  # a head block 0 does not have
    torch.save(sd, tmp_path / "extra.pt")
    assert "unexpected weight" in _error(tmp_path / "extra.pt", corpus=corpus_file).problem
    sd = ref.state_dict()
    sd["blocks.0.sa.rotary.weight"] = torch.zeros(2)
    torch.save(sd, tmp_path / "extra2.pt")
    assert "unexpected weights: blocks.0.sa.rotary.weight" in _error(tmp_path / "extra2.pt", corpus=corpus_file).problem
    sd = ref.state_dict()
    sd["ln_f.weight"] = "not a tensor"
    torch.save(sd, tmp_path / "str.pt")
    assert "not named tensors: ln_f.weight" in _error(tmp_path / "str.pt", corpus=corpus_file).problem


def test_other_torch_layouts(tmp_path, corpus_text):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    assert "holds a Tensor" in _error(tmp_path / "tensor.pt").problem
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    assert "unrecognised checkpoint layout" in _error(tmp_path / "other.pt").problem
    nano = NanoGPT(20, n_embd=8, n_head=2, n_layer=1, block_size=8)
    torch.save(nano.state_dict(), tmp_path / "bare.pt")
    assert "bare nanoGPT state_dict" in _error(tmp_path / "bare.pt").problem
    torch.save({"model": nano.state_dict(), "model_args": "n_head=2"}, tmp_path / "args.pt")
    assert "malformed" in _error(tmp_path / "args.pt").problem


def test_non_finite_weights(tmp_path, corpus_text, corpus_file):
    ref = LectureGPT(len(set(corpus_text)), n_embd=8, n_head=2, n_layer=1, block_size=8)
    sd = ref.state_dict()
    sd["blocks.0.ffwd.net.0.weight"][0, 0] = float("nan")
    torch.save(sd, tmp_path / "nan.pt")
    assert "NaN or infinity: blocks.0.ffwd.net.0.weight" in _error(tmp_path / "nan.pt", corpus=corpus_file).problem


def test_vocabulary_size_mismatch(tmp_path, tiny_model, corpus_text, lecture_file):
    path = _native_variant(tmp_path, tiny_model, "vocab.safetensors", vocab=tiny_model.vocab[:-1])
    assert "vocabulary size mismatch" in _error(path).problem
    short = tmp_path / "short.txt"
    short.write_text("abc")
    err = _error(lecture_file, corpus=short)
    assert f"the vocabulary ({short}) has 3 characters but the token embedding has {len(set(corpus_text))} rows" \
        in err.problem
    chars = sorted(set(corpus_text))
    ckpt = save_nanogpt(tmp_path / "nano", NanoGPT(len(chars), n_embd=8, n_head=2, n_layer=1, block_size=8))
    write_meta(tmp_path / "nano" / "meta.pkl", chars[:-2])
    assert "vocabulary size mismatch" in _error(ckpt).problem


def test_bad_corpus_files(tmp_path, lecture_file):
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(CheckpointError, match="not UTF-8"):
        explorer.load(lecture_file, corpus=tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CheckpointError, match="corpus is empty"):
        explorer.load(lecture_file, corpus=tmp_path / "empty.txt")
    with pytest.raises(CheckpointError, match="cannot read the corpus"):
        explorer.load(lecture_file, corpus=tmp_path / "nope.txt")


# ---- files that would run code ---------------------------------------------------------------------
def test_the_payload_really_runs_code_when_unpickled_unsafely(tmp_path):
    """The check below would be empty if the payload did nothing: plain pickle does run it."""
    marker = tmp_path / "ran.txt"
    pickle.loads(pickle.dumps(RunsCode(marker)))
    assert marker.read_text() == "code ran"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["zip", "legacy", "raw-pickle", "nanogpt-config"])
def test_checkpoint_that_would_run_code_is_refused(tmp_path, how):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "ckpt.pt"
    evil = RunsCode(marker)
    if how == "zip":
        torch.save({"token_embedding_table.weight": evil}, path)
    elif how == "legacy":
        torch.save({"token_embedding_table.weight": evil}, path, _use_new_zipfile_serialization=False)
    elif how == "raw-pickle":
        path.write_bytes(pickle.dumps({"model": evil}, protocol=4))
    else:
        nano = NanoGPT(20, n_embd=8, n_head=2, n_layer=1, block_size=8)
        torch.save({"model": nano.state_dict(), "model_args": nano.model_args, "config": {"dataset": evil}}, path)
    err = _error(path)
    assert "refused" in err.problem and "run code" in err.problem
    assert not marker.exists(), "loading the checkpoint ran code from it"


def test_meta_pkl_that_would_run_code_is_refused(tmp_path, corpus_text):
    chars = sorted(set(corpus_text))
    ckpt = save_nanogpt(tmp_path / "out", NanoGPT(len(chars), n_embd=8, n_head=2, n_layer=1, block_size=8))
    marker = tmp_path / "pwned.txt"
    meta = tmp_path / "out" / "meta.pkl"
    with open(meta, "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "hook": RunsCode(marker)}, f)
    with pytest.raises(CheckpointError) as err:
        explorer.load(ckpt)
    assert str(meta) in str(err.value) and "refused" in err.value.problem and "builtins.exec" in err.value.problem
    assert not marker.exists(), "reading meta.pkl ran code from it"


@pytest.mark.parametrize("content, expect", [
    ({"vocab_size": 2, "itos": {0: "a", 1: "b"}, "extra": {1, 2}}, "plain data"),
    ({"vocab_size": 2, "itos": {0: "a", 1: b"b"}}, "plain data"),
    (["a", "b"], "must hold a dict"),
    ({"vocab_size": 2, "stoi": {"a": 0, "b": 1}}, "no 'itos'"),
    ({"itos": {0: "a", 2: "b"}}, "not the ids 0..n-1"),
    ({"vocab_size": 3, "itos": {0: "a", 1: "b"}}, "vocab_size 3 but 'itos' has 2"),
])
def test_malformed_meta_pkl(tmp_path, content, expect):
    path = tmp_path / "meta.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(CheckpointError, match=expect) as err:
        read_meta_pkl(path)
    assert str(path) in str(err.value)


def test_meta_pkl_with_multi_character_tokens_or_truncated(tmp_path, corpus_text):
    chars = sorted(set(corpus_text))
    ckpt = save_nanogpt(tmp_path / "out", NanoGPT(len(chars), n_embd=8, n_head=2, n_layer=1, block_size=8))
    write_meta(tmp_path / "out" / "meta.pkl", ["ab"] + chars[1:])
    assert "invalid vocabulary" in _error(ckpt).problem
    data = (tmp_path / "out" / "meta.pkl").read_bytes()
    (tmp_path / "out" / "meta.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable meta.pkl"):
        explorer.load(ckpt)


# ---- saving ---------------------------------------------------------------------------------------
def _folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_full_disk_during_save_keeps_the_previous_file(tmp_path, tiny_model, monkeypatch):
    path = tiny_model.save(tmp_path / "model.safetensors")
    before = path.read_bytes()

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\0" * 1000)  # part of the file made it to disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("safetensors.torch.save_file", full_disk)
    with torch.no_grad():
        tiny_model.module.lm_head.bias.add_(1.0)
    with pytest.raises(CheckpointError, match="No space left on device") as err:
        tiny_model.save(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == before
    assert _folder_listing(tmp_path) == ["model.safetensors"]  # no temp file left
    explorer.load(path)


def test_interrupted_save_removes_its_temp_file(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def interrupted(tmp):
        Path(tmp).write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_bytes() == b"old" and _folder_listing(tmp_path) == ["x.bin"]


def test_save_into_an_unwritable_or_missing_folder(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="cannot write in /proc"):  # unwritable even for root
        tiny_model.save("/proc/gpt_explorer_test.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        tiny_model.save(tmp_path / "no" / "such" / "folder" / "m.safetensors")
    (tmp_path / "adir").mkdir()
    with pytest.raises(CheckpointError, match="could not write the file"):
        tiny_model.save(tmp_path / "adir")  # the target is a folder: the rename fails
    assert (tmp_path / "adir").is_dir() and _folder_listing(tmp_path) == ["adir"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into a read-only folder")
def test_save_into_a_read_only_folder(tmp_path, tiny_model):
    path = tiny_model.save(tmp_path / "m.safetensors")
    before = path.read_bytes()
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="cannot write in"):
            tiny_model.save(path)
    finally:
        tmp_path.chmod(0o700)
    assert path.read_bytes() == before and _folder_listing(tmp_path) == ["m.safetensors"]
