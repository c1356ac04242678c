"""The bundled default model in resources/: it loads, it is the default, and it is as good as recorded."""
from __future__ import annotations

import math

import torch

import explorer
from explorer.core.checkpoints import default_model_path, read_native

BUNDLED = default_model_path()


def test_bundled_model_is_the_default_and_meets_its_targets():
    assert BUNDLED.is_file(), f"{BUNDLED} is missing"
    assert BUNDLED.stat().st_size <= 5_000_000
    m = explorer.load()
    assert m.source == str(BUNDLED)
    c = m.config
    assert (c.family, c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size) == ("lecture", 4, 4, 128, 128, 65)
    info = m.info
    assert info["val_loss"] <= 1.55
    assert info["train_loss"] < info["val_loss"] + 0.2
    assert info["iterations"] == info["max_iters"] >= 1000
    assert info["training_time_s"] > 0
    assert info["corpus"] == "tinyshakespeare.txt" and len(info["corpus_sha256"]) == 64
    assert info["command"].startswith("python -m explorer train") and "--corpus" in info["command"]
    tensors, _ = read_native(BUNDLED)
    assert not any(k.startswith("optim.") for k in tensors)  # weights only
    assert all(torch.isfinite(v).all() for v in m.module.state_dict().values())


def test_bundled_model_predicts_shakespeare():
    m = explorer.load()
    # after a speaker's name and a colon, a newline is what Tiny Shakespeare always has next
    trace = m.trace("ROMEO:")
    assert float(trace.probs[-1, m.tokenizer.stoi["\n"]]) > 0.5
    # a trained model is far better than uniform on a line of the play's kind of text
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    ids = torch.tensor([m.tokenizer.encode(text)])
    with torch.no_grad():
        _, loss = m.module(ids[:, :-1], ids[:, 1:])
    assert float(loss) < 0.6 * math.log(65)
    sample = m.generate("\n", 200, seed=0)
    assert len(sample) == 200 and sample.count(" ") > 15
