"""Every loader, on files the tests write themselves: native .safetensors (round trip, tied weights,
metadata), the lecture's state_dict (vocabulary from corpus=), nanoGPT's ckpt.pt (meta.pkl found in
each of its places) and the bundled default model."""
from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest
import torch

import explorer
from explorer import CheckpointError, ExplorerModel, GPTConfig
from explorer.core.checkpoints import default_model_path, read_meta_pkl, read_native
from reference_models import LectureGPT, NanoGPT, randomize_reference, save_nanogpt, write_meta

randomize = randomize_reference


def _header(path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])


def test_native_round_trip(tmp_path, tiny_model):
    path = tiny_model.save(tmp_path / "tiny.safetensors", info={"note": "round trip", "val_loss": 1.5})
    assert path == tmp_path / "tiny.safetensors" and path.is_file()
    meta = _header(path)["__metadata__"]
    assert meta["format"] == "gpt-explorer/1"
    assert json.loads(meta["vocab"]) == tiny_model.vocab
    assert GPTConfig.from_dict(json.loads(meta["config"])) == tiny_model.config

    loaded = explorer.load(path)
    assert isinstance(loaded, ExplorerModel)
    assert loaded.config == tiny_model.config and loaded.vocab == tiny_model.vocab
    assert loaded.name == "tiny" and loaded.source == str(path)
    assert loaded.info["note"] == "round trip" and loaded.info["val_loss"] == 1.5
    for k, v in tiny_model.module.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[k], v), k
    np.testing.assert_array_equal(loaded.trace("First Citizen").logits, tiny_model.trace("First Citizen").logits)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_native_round_trip_keeps_weights_tied(tmp_path, corpus_text):
    vocab = sorted(set(corpus_text))
    cfg = GPTConfig.nanogpt(bias=False, vocab_size=len(vocab), block_size=16, n_layer=2, n_head=2, n_embd=16)
    m = ExplorerModel.untrained(cfg, vocab)
    randomize(m.module, seed=4)
    path = m.save(tmp_path / "nano.safetensors")
    tensors, meta = read_native(path)
    assert "lm_head.weight" not in tensors  # stored once, as the token embedding
    assert not any(k.endswith(".bias") for k in tensors)
    loaded = explorer.load(path)
    assert loaded.module.lm_head.weight is loaded.module.token_embedding_table.weight
    assert loaded.config == cfg and loaded.config.family == "nanogpt"
    np.testing.assert_array_equal(loaded.trace("First").logits, m.trace("First").logits)
    with torch.no_grad():  # still one parameter after loading: changing one changes both
        loaded.module.token_embedding_table.weight[0, 0] = 42.0
    assert loaded.module.lm_head.weight[0, 0].item() == 42.0


def test_native_file_keeps_extra_tensors_apart(tmp_path, tiny_model):
    """Training checkpoints carry optimizer state as optim.* tensors: the model loads without them."""
    from explorer.core.checkpoints import save_native

    path = save_native(tmp_path / "train.safetensors", tiny_model.module, tiny_model.vocab,
                       extra_tensors={"optim.step": torch.tensor([3.0])}, extra_meta={"history": [1, 2]})
    tensors, meta = read_native(path)
    assert "optim.step" in tensors and meta["history"] == [1, 2]
    loaded = explorer.load(path)
    np.testing.assert_array_equal(loaded.trace("First").logits, tiny_model.trace("First").logits)


def test_lecture_state_dict_with_corpus(tmp_path, corpus_text, corpus_file):
    vocab = sorted(set(corpus_text))
    ref = LectureGPT(len(vocab), n_embd=12, n_head=3, n_layer=2, block_size=10).eval()
    randomize_reference(ref)
    sd = ref.state_dict()
    assert any(k.endswith(".tril") for k in sd)  # the buffers the loader must ignore are really there
    torch.save(sd, tmp_path / "gpt.pt")
    model = explorer.load(tmp_path / "gpt.pt", corpus=corpus_file)
    assert model.vocab == vocab and model.tokenizer.vocab == tuple(vocab)
    assert model.info["format"] == "lecture" and model.info["corpus"] == str(corpus_file)
    assert (model.config.n_head, model.config.head_size) == (3, 4)
    assert model.name == "gpt"
    np.testing.assert_array_equal(model.module.blocks[1].sa.qkv.weight[:4].detach().numpy(),
                                  ref.blocks[1].sa.heads[0].query.weight.detach().numpy())
    np.testing.assert_array_equal(model.module.blocks[1].sa.qkv.weight[12 + 8:12 + 12].detach().numpy(),
                                  ref.blocks[1].sa.heads[2].key.weight.detach().numpy())


def test_lecture_state_dict_without_corpus(tmp_path, corpus_text):
    ref = LectureGPT(len(set(corpus_text)), n_embd=8, n_head=2, n_layer=1, block_size=8)
    torch.save(ref.state_dict(), tmp_path / "gpt.pt")
    with pytest.raises(CheckpointError) as err:
        explorer.load(tmp_path / "gpt.pt")
    assert err.value.needs == "corpus" and "corpus" in str(err.value) and "gpt.pt" in str(err.value)

    ref65 = LectureGPT(65, n_embd=8, n_head=2, n_layer=1, block_size=8)
    torch.save(ref65.state_dict(), tmp_path / "shakespeare.pt")
    with pytest.warns(UserWarning, match="Tiny Shakespeare alphabet"):
        model = explorer.load(tmp_path / "shakespeare.pt")
    assert len(model.vocab) == 65 and model.info["corpus"] is None
    assert model.trace("ROMEO:").unknown == ()


def test_nanogpt_meta_places_and_precedence(tmp_path, corpus_text):
    chars = sorted(set(corpus_text))
    ref = NanoGPT(len(chars), n_embd=8, n_head=2, n_layer=1, block_size=8)
    ckpt = save_nanogpt(tmp_path / "out", ref, dataset="tiny_char")
    with pytest.raises(CheckpointError) as err:  # no meta.pkl anywhere
        explorer.load(ckpt)
    assert err.value.needs == "meta" and "meta.pkl" in str(err.value)

    data_meta = write_meta(tmp_path / "data" / "tiny_char" / "meta.pkl", chars)
    assert explorer.load(ckpt).info["meta"] == str(data_meta)
    shifted = chars[1:] + chars[:1]  # a different order, to see which file was used
    beside = write_meta(tmp_path / "out" / "meta.pkl", shifted)
    m = explorer.load(ckpt)
    assert m.info["meta"] == str(beside) and m.vocab == shifted  # beside the checkpoint wins
    explicit = write_meta(tmp_path / "mine.pkl", chars)
    m = explorer.load(ckpt, meta=explicit)
    assert m.info["meta"] == str(explicit) and m.vocab == chars  # meta= wins over both
    assert m.name == "out/ckpt" and m.info["format"] == "nanogpt"
    assert read_meta_pkl(explicit) == chars


def test_nanogpt_ckpt_saved_by_legacy_serialization(tmp_path, corpus_text):
    """Older torch.save files (not zip) load too, still through weights_only."""
    chars = sorted(set(corpus_text))
    ref = NanoGPT(len(chars), n_embd=8, n_head=2, n_layer=1, block_size=8).eval()
    randomize_reference(ref)
    ckpt = {"model": ref.state_dict(), "model_args": ref.model_args, "iter_num": 0, "best_val_loss": 2.0,
            "config": {"dataset": "x"}}
    torch.save(ckpt, tmp_path / "ckpt.pt", _use_new_zipfile_serialization=False)
    write_meta(tmp_path / "meta.pkl", chars)
    m = explorer.load(tmp_path / "ckpt.pt")
    with torch.no_grad():
        want = ref(torch.tensor([[1, 2, 3]]))[0].numpy()
    np.testing.assert_allclose(m.trace("".join(chars[i] for i in (1, 2, 3))).logits, want, atol=1e-5)


def test_bundled_default_model(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("GPT_EXPLORER_RESOURCES", str(tmp_path))
    assert default_model_path() == tmp_path / "default_model.safetensors"
    with pytest.raises(CheckpointError, match="bundled default model is missing"):
        explorer.load()
    tiny_model.save(tmp_path / "default_model.safetensors")
    model = explorer.load()
    assert model.name == "default_model" and model.config == tiny_model.config


def test_load_accepts_str_paths_and_untrained_models_save(tmp_path, corpus_text):
    vocab = sorted(set(corpus_text))
    m = ExplorerModel.untrained(GPTConfig(vocab_size=len(vocab), block_size=8, n_layer=1, n_head=1, n_embd=4), vocab)
    m.save(str(tmp_path / "u.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a native file
        loaded = explorer.load(str(tmp_path / "u.safetensors"))
    assert loaded.config == m.config
