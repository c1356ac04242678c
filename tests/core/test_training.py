"""The trainer: learning, schedule, resume, stop/pause from another thread, divergence, atomic saves,
fine-tuning, the command line, and the bundled default model."""
from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import replace

import pytest
import torch

import explorer
from explorer.core.checkpoints import CheckpointError, read_native
from explorer.core.data import Corpus, CorpusError, VocabularyMismatch, load_corpus
from explorer.core.model import GPTConfig, count_params
from explorer.core.training import PRESETS, TrainConfig, Trainer, TrainingDiverged, preset


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, and the tests then stay quick on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cfgs(**train):
    model_cfg = GPTConfig.lecture(block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
    kw = dict(batch_size=8, max_iters=20, lr=3e-3, min_lr=3e-4, warmup_iters=3, eval_interval=10, eval_iters=4,
              sample_chars=20, seed=7)
    kw.update(train)
    return model_cfg, TrainConfig(**kw)


def make_trainer(corpus_file, out=None, **train):
    model_cfg, cfg = tiny_cfgs(**train)
    return Trainer(load_corpus(corpus_file), cfg, model_config=model_cfg, out=out)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- schedule and presets -----------------------------------------------------------------------
def test_lr_schedule_warmup_then_cosine_to_min_lr():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110)
    assert cfg.lr_at(0) == pytest.approx(1e-3 * 1 / 11)
    assert cfg.lr_at(9) == pytest.approx(1e-3 * 10 / 11)
    assert cfg.lr_at(10) == pytest.approx(1e-3)
    assert cfg.lr_at(60) == pytest.approx(0.5 * (1e-3 + 1e-4))  # half way down the cosine
    assert cfg.lr_at(110) == pytest.approx(1e-4) and cfg.lr_at(500) == pytest.approx(1e-4)
    lrs = [cfg.lr_at(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    lecture = preset("lecture")[1]
    assert {lecture.lr_at(s) for s in (0, 1000, 4999)} == {3e-4}  # the lecture's constant rate


def test_presets_have_the_documented_sizes():
    lec_model, lec = preset("lecture")
    assert (lec.batch_size, lec_model.block_size, lec_model.n_layer, lec_model.n_head, lec_model.n_embd,
            lec_model.dropout, lec.lr, lec.max_iters) == (64, 256, 6, 6, 384, 0.2, 3e-4, 5000)
    assert count_params(lec_model) == pytest.approx(10.8e6, rel=0.01)
    small_model, _ = preset("small")
    assert 0.7e6 < count_params(small_model) < 1.2e6
    assert preset("tiny", family="nanogpt")[0].family == "nanogpt"
    assert set(PRESETS) == {"lecture", "small", "tiny"}
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)


# ---- learning -----------------------------------------------------------------------------------
def test_loss_falls_on_a_small_corpus(corpus_file):
    trainer = make_trainer(corpus_file, max_iters=60, eval_interval=60, eval_iters=8)
    before = trainer.evaluate(sample=False)
    assert before["val"] == pytest.approx(math.log(len(trainer.vocab)), abs=0.15)  # uniform guess at init
    events = []
    result = trainer.run(events.append)
    assert result.status == "finished" and result.step == 60
    assert result.val_loss < before["val"] - 0.8
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == list(range(1, 61))
    assert steps[-1].tokens_per_s > 0 and steps[-1].eta_s is not None and steps[-1].lr == pytest.approx(
        trainer.config.lr_at(59))
    evals = [e for e in events if e.kind == "eval"]
    assert evals[-1].val_loss == result.val_loss and len(evals[-1].sample) == 20
    assert set(evals[-1].sample) <= set(trainer.vocab)
    assert [e.kind for e in events][0] == "start" and events[-1].kind == "finished"


def test_same_seed_same_run(corpus_file):
    a, b = make_trainer(corpus_file, max_iters=8), make_trainer(corpus_file, max_iters=8)
    a.run(), b.run()
    assert a.history["loss"] == b.history["loss"]
    for (k, va), vb in zip(a.snapshot().items(), b.snapshot().values()):
        assert torch.equal(va, vb), k


# ---- checkpoints and resume ---------------------------------------------------------------------
def test_resume_continues_the_same_run_with_identical_optimizer_state(corpus_file, tmp_path):
    straight = make_trainer(corpus_file, tmp_path / "straight.safetensors", max_iters=20)
    straight.run()

    first = make_trainer(corpus_file, tmp_path / "run.safetensors", max_iters=20)
    first.run(lambda e: first.request_stop() if e.kind == "eval" and e.step == 10 else None)
    assert first.step == 10
    saved_opt = first.optimizer.state_dict()

    resumed = Trainer.from_checkpoint(tmp_path / "run.safetensors")
    assert resumed.step == 10 and resumed.history == first.history
    got = resumed.optimizer.state_dict()
    assert got["param_groups"] == saved_opt["param_groups"]
    for idx, st in saved_opt["state"].items():
        for name, value in st.items():
            assert torch.equal(got["state"][idx][name], value), (idx, name)

    events = []
    result = resumed.run(events.append)
    assert result.status == "finished"
    assert [e.step for e in events if e.kind == "step"] == list(range(11, 21))  # continuous step count
    assert resumed.history["step"] == list(range(1, 21))
    assert resumed.history["loss"] == straight.history["loss"]  # same batches, same dropout, same updates
    assert [e["step"] for e in resumed.history["eval"]] == [10, 20]
    for (k, va), vb in zip(straight.snapshot().items(), resumed.snapshot().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=1e-6, msg=k)
    longer = Trainer.from_checkpoint(tmp_path / "run.safetensors", max_iters=25)  # extending the run
    assert longer.step == 20 and longer.config.lr_at(20) == pytest.approx(longer.config.min_lr)
    with pytest.raises(ValueError, match="already at step 20"):
        Trainer.from_checkpoint(tmp_path / "run.safetensors", max_iters=15)
    ta, _ = read_native(tmp_path / "straight.safetensors")
    tb, _ = read_native(tmp_path / "run.safetensors")
    assert set(ta) == set(tb)
    for k in ta:
        if k.startswith("optim.state."):
            torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=1e-6, msg=k)


def test_training_checkpoint_loads_as_a_model_with_its_info(corpus_file, tmp_path):
    out = tmp_path / "m.safetensors"
    trainer = make_trainer(corpus_file, out, max_iters=10)
    trainer.run()
    m = explorer.load(out)
    assert m.info["iterations"] == 10 and m.info["corpus"] == "corpus.txt"
    assert m.info["corpus_sha256"] == sha(corpus_file)
    assert m.info["val_loss"] == pytest.approx(trainer.last_eval["val"], abs=1e-4)
    for k, v in trainer.snapshot().items():
        assert torch.equal(m.module.state_dict()[k], v), k
    weights = trainer.save(tmp_path / "w.safetensors", weights_only=True)
    assert os.path.getsize(weights) < os.path.getsize(out) / 2
    assert not any(k.startswith("optim.") for k in read_native(weights)[0])
    with pytest.raises(CheckpointError, match="no training state"):
        Trainer.from_checkpoint(weights)


def test_resume_refuses_a_different_corpus(corpus_file, tmp_path, corpus_text):
    out = tmp_path / "m.safetensors"
    make_trainer(corpus_file, out, max_iters=4, eval_interval=4).run()
    other = tmp_path / "other.txt"
    other.write_text(corpus_text[::-1], encoding="utf-8")
    with pytest.raises(CorpusError, match="not the corpus this run was trained on"):
        Trainer.from_checkpoint(out, other)


def test_fine_tune_on_a_new_corpus_with_the_same_vocabulary(corpus_file, tmp_path):
    base_path = tmp_path / "base.safetensors"
    base = make_trainer(corpus_file, max_iters=4)
    base.run()
    base.save(base_path, weights_only=True)
    model = explorer.load(base_path)
    new_text = "All:\nSpeak, speak. Resolved, resolved.\n" * 40  # a subset of the alphabet
    _, cfg = tiny_cfgs(max_iters=5, eval_interval=5)
    ft = Trainer(Corpus.from_text(new_text, name="new.txt"), cfg, model=model)
    assert ft.vocab == model.vocab and ft.step == 0
    ft.run()
    assert ft.step == 5
    assert not torch.equal(ft.snapshot()["lm_head.weight"], model.module.state_dict()["lm_head.weight"])
    assert ft.run_info()["finetuned_from"] == str(base_path)
    with pytest.raises(VocabularyMismatch, match=r"vocabulary mismatch.*Q.*€"):
        Trainer(Corpus.from_text("Quoth the raven, €5. " * 40), cfg, model=model)


# ---- control from another thread ----------------------------------------------------------------
def test_stop_pause_and_snapshot_from_another_thread(corpus_file, tmp_path):
    out = tmp_path / "bg.safetensors"
    trainer = make_trainer(corpus_file, out, max_iters=100_000, eval_interval=100_000)
    events, reached, paused, snap = [], threading.Event(), threading.Event(), threading.Event()

    def callback(e):
        events.append(e)
        if e.kind == "step" and e.step >= 3:
            reached.set()
        elif e.kind == "paused":
            paused.set()
        elif e.kind == "snapshot":
            snap.set()

    result = {}
    worker = threading.Thread(target=lambda: result.update(r=trainer.run(callback)))
    worker.start()
    try:
        assert reached.wait(60)
        trainer.pause()
        assert paused.wait(30) and trainer.paused
        held = trainer.step
        state = trainer.snapshot()
        trainer.request_snapshot()  # live views may ask while paused, too
        assert snap.wait(30)
        threading.Event().wait(0.2)
        assert trainer.step == held  # nothing moves while paused
        reached.clear()
        snap.clear()
        trainer.resume()
        assert reached.wait(30)
        trainer.request_snapshot()  # and while running: after the next step
        assert snap.wait(30)
        trainer.request_stop()
        worker.join(60)
    finally:
        trainer.request_stop()
        worker.join(60)
    assert not worker.is_alive()
    r = result["r"]
    assert r.status == "stopped" and held < r.step < 100_000
    kinds = [e.kind for e in events]
    assert kinds.index("paused") < kinds.index("snapshot") < kinds.index("resumed") and kinds[-1] == "stopped"
    snap_event, running_snap = [e for e in events if e.kind == "snapshot"]
    assert snap_event.step == held < running_snap.step <= r.step
    for k, v in state.items():  # the weights as they were when paused
        assert torch.equal(snap_event.state[k], v), k
    m = explorer.load(out)  # the stop saved a checkpoint at the last step
    assert m.info["iterations"] == r.step
    version = m.weights_version
    m.load_snapshot(snap_event.state)  # what the GUI does with it
    assert m.weights_version == version + 1


def test_a_stop_during_an_evaluation_ends_the_run_promptly(corpus_file, tmp_path):
    out = tmp_path / "run.safetensors"
    trainer = make_trainer(corpus_file, out, max_iters=50, eval_interval=5, eval_iters=10_000)
    result = trainer.run(lambda e: trainer.request_stop() if e.kind == "step" and e.step == 5 else None)
    assert result.status == "stopped" and "during its evaluation" in result.message
    assert trainer.history["eval"] == [] and explorer.load(out).info["iterations"] == 5


def test_saves_from_another_thread_while_training_are_consistent(corpus_file, tmp_path):
    trainer = make_trainer(corpus_file, max_iters=100_000, eval_interval=100_000)
    started = threading.Event()
    worker = threading.Thread(target=trainer.run, args=(lambda e: started.set() if e.kind == "step" else None,))
    worker.start()
    try:
        assert started.wait(60)
        paths = [trainer.save(tmp_path / f"s{i}.safetensors") for i in range(3)]
    finally:
        trainer.request_stop()
        worker.join(60)
    for p in paths:
        tensors, meta = read_native(p)
        step = meta["train"]["step"]
        assert meta["train"]["history"]["step"] == list(range(1, step + 1))
        assert int(tensors["optim.state.0.step"]) == step  # AdamW's own count matches the weights
        assert Trainer.from_checkpoint(p).step == step


# ---- divergence and atomic writes ---------------------------------------------------------------
def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(corpus_file, tmp_path):
    out = tmp_path / "run.safetensors"
    trainer = make_trainer(corpus_file, out, max_iters=50, eval_interval=5)
    saved = {}

    def callback(e):
        if e.kind == "checkpoint":
            saved[e.step] = sha(out)
        if e.kind == "step" and e.step == 7:
            with torch.no_grad():
                trainer.module.lm_head.weight[0, 0] = float("nan")  # the injection

    events = []
    result = trainer.run(lambda e: (events.append(e), callback(e)))
    assert result.status == "diverged" and result.step == 7
    assert "diverged" in result.message and "nan" in result.message and str(out) in result.message
    assert events[-1].kind == "diverged"
    assert list(saved) == [5] and sha(out) == saved[5]  # the step-5 file, untouched
    m = explorer.load(out)
    assert m.info["iterations"] == 5
    assert all(torch.isfinite(v).all() for v in m.module.state_dict().values())
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    again = make_trainer(corpus_file, max_iters=5)
    with torch.no_grad():
        again.module.token_embedding_table.weight.fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match="no checkpoint had been saved yet"):
        again.run(raise_on_divergence=True)


def test_interrupted_save_leaves_the_previous_file_intact(corpus_file, tmp_path, monkeypatch):
    out = tmp_path / "run.safetensors"
    trainer = make_trainer(corpus_file, out, max_iters=3, eval_interval=3)
    trainer.run()
    before = sha(out)
    import safetensors.torch

    real = safetensors.torch.save_file

    def half_then_fail(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:
            f.truncate(os.path.getsize(filename) // 2)  # part of the file is on disk...
        raise OSError(28, "No space left on device")  # ...when the write fails

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_fail)
    trainer.config = replace(trainer.config, max_iters=6)
    with pytest.raises(CheckpointError, match="No space left"):
        trainer.run()
    monkeypatch.undo()
    assert sha(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "run.safetensors"]
    assert explorer.load(out).info["iterations"] == 3


def test_a_corpus_too_short_for_the_context_is_refused(tmp_path):
    p = tmp_path / "short.txt"
    p.write_text("Speak, speak.\n" * 10, encoding="utf-8")
    model_cfg, cfg = tiny_cfgs()
    with pytest.raises(CorpusError, match="too short"):
        Trainer(load_corpus(p), cfg, model_config=replace(model_cfg, block_size=64))


def test_stop_without_saving_keeps_the_last_evaluation_checkpoint(corpus_file, tmp_path):
    out = tmp_path / "run.safetensors"
    trainer = make_trainer(corpus_file, out=out, max_iters=40)
    saved = {}

    def on_event(e):
        if e.kind == "checkpoint" and "first" not in saved:
            saved["first"] = sha(out)
        if e.kind == "step" and e.step == 14:  # after the step-10 evaluation saved
            trainer.request_stop(save=False)

    result = trainer.run(on_event)
    assert result.status == "stopped" and result.step == 14
    assert sha(out) == saved["first"]  # the final save was skipped
    assert Trainer.from_checkpoint(out).step == 10
    # the next run saves on stop again (the request applied to that run only)
    again = trainer.run(lambda e: trainer.request_stop() if e.kind == "step" and e.step == 16 else None)
    assert again.status == "stopped" and Trainer.from_checkpoint(out).step == 16


def test_a_stop_requested_before_the_run_starts_is_honoured(corpus_file, tmp_path):
    out = tmp_path / "run.safetensors"
    trainer = make_trainer(corpus_file, out=out)
    trainer.request_stop(save=False)
    result = trainer.run()
    assert result.status == "stopped" and result.step == 0 and not out.exists()
    assert trainer.run(lambda e: None).status == "finished"  # and it does not linger
