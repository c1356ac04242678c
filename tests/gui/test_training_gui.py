"""Training from the app: a run starts in its own thread, reports progress, updates the traced model
live, pauses, resumes, stops, saves, and closing the window mid-run leaves a valid checkpoint and
no running thread."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import shiboken6
import torch
from PySide6.QtWidgets import QMessageBox

import explorer
from explorer.core.training import TrainConfig
from explorer.gui.workers import TrainJob


def stopped(worker) -> bool:
    """The thread has ended (the window deletes a worker only after joining it)."""
    return not shiboken6.isValid(worker) or worker.isFinished()


def tiny_job(corpus_file, out, *, max_iters=100_000, init_model=None, eval_interval=50) -> TrainJob:
    cfg = TrainConfig(batch_size=8, max_iters=max_iters, lr=3e-3, min_lr=3e-4, warmup_iters=5,
                      eval_interval=eval_interval, eval_iters=2, sample_chars=24, seed=7)
    model_cfg = explorer.GPTConfig.lecture(vocab_size=1, block_size=16, n_layer=1, n_head=2, n_embd=16)
    return TrainJob(corpus=str(corpus_file), out=str(out), train_config=cfg, model_config=model_cfg,
                    init_model=init_model, preset="custom", snapshot_interval_s=0.2, progress_interval_s=0.05)


def test_a_run_reports_progress_updates_the_views_pauses_and_stops(light_window, qtbot, corpus_file, tmp_path):
    w = light_window
    c, panel = w.controller, w.training_panel
    out = tmp_path / "runs" / "tiny_run.safetensors"
    worker = w.training.start(tiny_job(corpus_file, out))
    assert w.docks["dock_training"].isVisible() and panel.running
    assert not w.open_action.isEnabled() and not w.train_action.isEnabled() and w.stop_action.isEnabled()
    # progress reaches the panel
    qtbot.waitUntil(lambda: panel.progress.value() > 20, timeout=60000)
    assert panel.progress.maximum() == 100_000
    assert panel.stats["step"].text().endswith("/ 100,000")
    assert float(panel.stats["tokens/s"].text().replace(",", "")) > 0
    assert len(panel.steps) > 0 and np.all(np.isfinite(panel.losses))
    assert panel.curve_step.getData()[0] is not None and len(panel.curve_step.getData()[0]) == len(panel.steps)
    # the traced model is the one being trained, and its weights follow the run
    qtbot.waitUntil(lambda: c.trace is not None and c.trace.model_name == "training: tiny_run"
                    and c.trace.weights_version >= 2, timeout=60000)
    assert c.model_info.config.n_embd == 16 and w.training.n_snapshots >= 2
    assert w.architecture.items["blocks.0"] is not None and "blocks.1" not in w.architecture.items
    # an evaluation draws its points and shows a sample
    qtbot.waitUntil(lambda: len(panel.eval_steps) >= 1, timeout=60000)
    assert panel.sample.toPlainText() and panel.eval_steps[0] == 50
    assert panel.curve_eval_val.getData()[1][0] == pytest.approx(panel.eval_val[0])
    # pause: the step stops moving
    with qtbot.waitSignal(worker.pausedChanged, timeout=20000) as sig:
        panel.pause_button.click()
    assert sig.args == [True] and panel.pause_button.text() == "Resume"
    qtbot.wait(200)
    step = worker.trainer.step
    qtbot.wait(500)
    assert worker.trainer.step == step and worker.isRunning()
    # resume: it moves again
    with qtbot.waitSignal(worker.pausedChanged, timeout=20000) as sig:
        panel.pause_button.click()
    assert sig.args == [False] and panel.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: worker.trainer.step > step + 5, timeout=60000)
    # stop: a checkpoint is saved, the thread ends, the trained model becomes the loaded one
    with qtbot.waitSignal(c.modelChanged, timeout=60000) as loaded:
        panel.stop_button.click()
    assert w.training.last_result.status == "stopped"
    assert loaded.args[0].source == str(out) and loaded.args[0].name == "tiny_run"
    qtbot.waitUntil(lambda: w.training.worker is None, timeout=20000)
    assert stopped(worker)
    saved = explorer.load(out)
    assert saved.info["iterations"] == w.training.last_result.step > step
    assert not panel.running and panel.caption.label.text().startswith("Stopped")
    assert w.open_action.isEnabled() and w.train_action.isEnabled() and not w.stop_action.isEnabled()


def test_save_now_writes_a_loadable_checkpoint(light_window, qtbot, corpus_file, tmp_path):
    w = light_window
    out = tmp_path / "save_now.safetensors"
    worker = w.training.start(tiny_job(corpus_file, out))
    qtbot.waitUntil(lambda: worker.trainer is not None and worker.trainer.step > 10, timeout=60000)
    with qtbot.waitSignal(worker.checkpointSaved, timeout=30000) as sig:
        w.training_panel.save_button.click()
    assert sig.args[0] == str(out)
    assert explorer.load(out).info["iterations"] >= 10
    w.training.join(save=False)
    assert w.training.worker is None and stopped(worker)


def test_closing_mid_training_saves_and_leaves_no_thread(make_window, model_file, qtbot, corpus_file, tmp_path,
                                                         dialogs):
    w = make_window(model_file, all_panels=False)
    out = tmp_path / "closing.safetensors"
    worker = w.training.start(tiny_job(corpus_file, out))
    qtbot.waitUntil(lambda: worker.trainer is not None and worker.trainer.step > 30, timeout=60000)
    dialogs.answers["question"] = [QMessageBox.StandardButton.Save]
    w.close()
    (_, title, text), = dialogs.of_kind("question")
    assert title == "Training is running" and "Save a checkpoint" in text
    assert stopped(worker) and w.training.worker is None
    assert not w.controller.thread.isRunning()
    assert not [t for t in threading.enumerate() if t.name == "save-now"]
    saved = explorer.load(out)
    assert saved.info["iterations"] >= 30
    assert saved.info["iterations"] == worker.trainer.step


def test_cancelling_the_close_keeps_training(light_window, qtbot, corpus_file, tmp_path, dialogs):
    w = light_window
    worker = w.training.start(tiny_job(corpus_file, tmp_path / "keep.safetensors"))
    qtbot.waitUntil(lambda: worker.trainer is not None and worker.trainer.step > 5, timeout=60000)
    dialogs.answers["question"] = [QMessageBox.StandardButton.Cancel]
    w.close()
    assert w.isVisible() and worker.isRunning() and w.controller.thread.isRunning()
    step = worker.trainer.step
    qtbot.waitUntil(lambda: worker.trainer.step > step, timeout=60000)
    w.training.join(save=False)
    assert stopped(worker)


def test_a_run_that_finishes_opens_its_model(light_window, qtbot, corpus_file, tmp_path):
    w = light_window
    out = tmp_path / "finished.safetensors"
    with qtbot.waitSignal(w.controller.modelChanged, timeout=120000, check_params_cb=lambda i: i.name == "finished"):
        w.training.start(tiny_job(corpus_file, out, max_iters=60, eval_interval=30))
    result = w.training.last_result
    assert result.status == "finished" and result.step == 60
    assert w.training_panel.progress.value() == 60
    assert w.training_panel.eval_steps == [30, 60]
    assert w.training_panel.restore_button.isVisible()  # "Back to previous model" (tiny.safetensors)
    with qtbot.waitSignal(w.controller.modelChanged, timeout=30000) as sig:
        w.training_panel.restore_button.click()
    assert sig.args[0].name == "tiny"


def test_fine_tuning_the_loaded_model_keeps_its_shape(light_window, qtbot, corpus_file, tmp_path, tiny_model):
    w = light_window
    job = tiny_job(corpus_file, tmp_path / "ft.safetensors", max_iters=20, eval_interval=10)
    job.init_model = w.controller.model_info.model
    job.model_config = None
    with qtbot.waitSignal(w.controller.modelChanged, timeout=120000, check_params_cb=lambda i: i.name == "ft"):
        w.training.start(job)
    tuned = explorer.load(tmp_path / "ft.safetensors")
    assert tuned.config == tiny_model.config
    assert tuned.info["finetuned_from"].endswith("tiny.safetensors")
    before = tiny_model.module.state_dict()["lm_head.weight"]
    assert not torch.equal(tuned.module.state_dict()["lm_head.weight"], before)


def test_a_corpus_that_cannot_be_used_is_reported(light_window, qtbot, tmp_path, dialogs):
    w = light_window
    bad = tmp_path / "binary.txt"
    bad.write_bytes(bytes(range(256)) * 10)
    worker = w.training.start(tiny_job(bad, tmp_path / "never.safetensors"))
    with qtbot.waitSignal(worker.failed, timeout=30000):
        pass
    qtbot.waitUntil(lambda: w.training.worker is None, timeout=20000)
    (_, title, text), = dialogs.of_kind("critical")
    assert title == "Training stopped" and "binary.txt" in text
    assert not w.training_panel.running and w.train_action.isEnabled()
    assert not (tmp_path / "never.safetensors").exists()
    assert w.controller.model_info.name == "tiny"  # the loaded model is untouched


def test_the_train_dialog_fills_presets_and_validates(light_window, qtbot, corpus_file, tmp_path):
    from explorer.core.training import PRESETS
    from explorer.gui.train_dialog import TrainDialog

    dlg = TrainDialog(light_window, loaded=light_window.controller.model_info)
    qtbot.addWidget(dlg)
    assert dlg.preset_combo.currentText() == "small"
    model_kw, train_kw = PRESETS["small"]
    assert dlg.fields["n_embd"].value() == model_kw["n_embd"]
    assert dlg.fields["max_iters"].value() == train_kw["max_iters"]
    assert "parameters" in dlg.params_label.text()
    dlg.preset_combo.setCurrentText("tiny")
    assert dlg.fields["n_layer"].value() == PRESETS["tiny"][0]["n_layer"]
    dlg.fields["max_iters"].setValue(123)
    assert dlg.preset_combo.currentText() == "custom"
    assert dlg.validate().startswith("Choose a corpus")
    dlg.corpus_edit.setText(str(tmp_path / "missing.txt"))
    assert "does not exist" in dlg.validate()
    dlg.corpus_edit.setText(str(corpus_file))
    dlg.fields["n_head"].setValue(3)  # 32 dims do not split into 3 heads
    assert "divisible" in dlg.validate()
    dlg.fields["n_head"].setValue(2)
    dlg.out_edit.setText(str(tmp_path / "out" / "run"))
    assert dlg.validate() == ""
    job = dlg.job()
    assert job.out.endswith("run.safetensors") and job.train_config.max_iters == 123
    assert job.model_config.n_head == 2 and job.init_model is None
    dlg.finetune_radio.setChecked(True)
    cfg = light_window.controller.model_info.config
    assert not dlg.fields["n_embd"].isEnabled() and dlg.fields["n_embd"].value() == cfg.n_embd
    assert dlg.job().init_model is light_window.controller.model_info.model


def test_download_tiny_shakespeare_fills_the_corpus_or_says_why_not(light_window, qtbot, tmp_path, monkeypatch):
    import explorer.core.data as data
    from explorer.gui.train_dialog import TrainDialog

    dlg = TrainDialog(light_window, loaded=None)
    qtbot.addWidget(dlg)

    def offline(*args, **kwargs):
        raise data.DownloadError("could not download: no network connection")

    monkeypatch.setattr(data, "download_tiny_shakespeare", offline)
    dlg.download_button.click()
    qtbot.waitUntil(lambda: dlg.download_button.isEnabled(), timeout=10000)
    assert "no network connection" in dlg.error_label.text() and dlg.corpus_edit.text() == ""
    fetched = tmp_path / "tinyshakespeare.txt"
    fetched.write_text("First Citizen:\nBefore we proceed.\n" * 50, encoding="utf-8")
    monkeypatch.setattr(data, "download_tiny_shakespeare", lambda *a, **k: fetched)
    dlg.download_button.click()
    qtbot.waitUntil(lambda: dlg.corpus_edit.text() == str(fetched), timeout=10000)
    assert "tinyshakespeare-small" in dlg.out_edit.text()
    assert not dlg.finetune_radio.isEnabled()  # nothing loaded to fine-tune


def test_closing_without_saving_keeps_the_last_evaluation_checkpoint(make_window, model_file, qtbot, corpus_file,
                                                                      tmp_path, dialogs):
    w = make_window(model_file, all_panels=False)
    out = tmp_path / "discard.safetensors"
    worker = w.training.start(tiny_job(corpus_file, out, eval_interval=20))
    qtbot.waitUntil(lambda: out.exists(), timeout=60000)  # the first evaluation wrote a checkpoint
    qtbot.waitUntil(lambda: worker.trainer.step > 30, timeout=60000)
    dialogs.answers["question"] = [QMessageBox.StandardButton.Discard]
    w.close()
    assert stopped(worker) and not w.controller.thread.isRunning()
    saved = explorer.load(out)  # still a valid checkpoint: the one from the last evaluation
    assert saved.info["iterations"] % 20 == 0 and saved.info["iterations"] <= worker.trainer.step
