"""`python -m explorer train`: options, errors, resume, export, and Ctrl-C in a real process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import explorer
from explorer.__main__ import build_parser, main
from explorer.core.checkpoints import read_native

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--preset", "tiny", "--block-size", "16", "--batch-size", "8", "--eval-iters", "3", "--sample-chars", "10",
        "--threads", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The command sets torch's thread count for the process; put it back for the other tests."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def train_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["train"]


def test_help_documents_every_option(capsys):
    p = train_parser()
    with pytest.raises(SystemExit):
        p.parse_args(["--help"])
    text = capsys.readouterr().out
    options = [a for a in p._actions if a.option_strings]
    assert len(options) > 25
    for action in options:
        assert action.help, action.option_strings
        for flag in action.option_strings:
            assert flag in text


def test_train_export_and_resume_from_the_command_line(corpus_file, tmp_path, capsys):
    out, weights = tmp_path / "run.safetensors", tmp_path / "w.safetensors"
    rc = main(["train", "--corpus", str(corpus_file), "--out", str(out), "--max-iters", "12", "--eval-interval", "6",
               "--export-weights", str(weights), *TINY])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "step 6: train loss" in captured.err and "saved" in captured.err
    assert captured.out.startswith("finished: step 12")
    m = explorer.load(weights)
    assert m.info["iterations"] == 12 and m.info["preset"] == "tiny"
    assert "--max-iters 12" in m.info["command"] and m.config.block_size == 16
    assert not any(k.startswith("optim.") for k in read_native(weights)[0])

    rc = main(["train", "--resume", str(out), "--max-iters", "18", "--threads", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "resuming" in captured.err and "at step 12/18" in captured.err
    _, meta = read_native(out)
    assert meta["train"]["step"] == 18 and meta["train"]["history"]["step"] == list(range(1, 19))
    assert "--max-iters 12" in meta["info"]["command"]  # the command that started the run
    assert meta["info"]["resumed_with"] == [f"python -m explorer train --resume {out} --max-iters 18 --no-progress"]

    rc = main(["train", "--resume", str(out), "--threads", "1", "--no-progress"])
    assert rc == 2 and "already finished at step 18" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--corpus", "{missing}", "--out", "{out}"], "no such file"),
    (["--corpus", "{corpus}"], "--out PATH is required"),
    (["--resume", "{out}", "--n-layer", "3"], "only --max-iters can change"),
    (["--corpus", "{corpus}", "--out", "{out}", "--n-embd", "30", "--n-head", "4"], "divisible"),
    (["--corpus", "{corpus}", "--out", "{out}", "--init", "{out}", "--resume", "{out}"], "give one of them"),
])
def test_bad_arguments_give_clear_errors(corpus_file, tmp_path, capsys, args, message):
    fill = {"missing": str(tmp_path / "nope.txt"), "out": str(tmp_path / "o.safetensors"), "corpus": str(corpus_file)}
    rc = main(["train", *[a.format(**fill) for a in args], "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.startswith("explorer train: error:")
    assert not (tmp_path / "o.safetensors").exists()


def test_ctrl_c_saves_and_exits_cleanly(corpus_file, tmp_path):
    out = tmp_path / "run.safetensors"
    cmd = [sys.executable, "-m", "explorer", "train", "--corpus", str(corpus_file), "--out", str(out),
           "--max-iters", "1000000", "--eval-interval", "1000000", "--log-interval", "1", *TINY]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if line.startswith("step") or not line:
                break
        assert line.startswith("step"), line
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Ctrl-C: stopping" in stderr and "stopped at step" in stderr and "Traceback" not in stderr
    step = explorer.load(out).info["iterations"]
    assert step >= 1 and stdout.startswith(f"stopped: step {step}")


def test_help_shows_the_real_preset_values():
    from explorer.cli.train_cmd import PRESET_VALUES
    from explorer.core.training import preset

    for i, name in enumerate(("lecture", "small", "tiny")):
        model_cfg, train_cfg = preset(name)
        for option, values in PRESET_VALUES.items():
            actual = getattr(model_cfg, option) if hasattr(model_cfg, option) else getattr(train_cfg, option)
            assert values[i] == actual, (name, option)
