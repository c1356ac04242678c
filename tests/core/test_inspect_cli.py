"""`python -m explorer inspect`: the tokens, the top-k next characters and the LayerNorm summary, as
text and as JSON, on models the tests save; every error is one line on stderr and a non-zero exit."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from explorer.__main__ import main
from reference_models import LectureGPT, NanoGPT, randomize_reference, save_nanogpt, write_meta


@pytest.fixture
def checkpoint(tmp_path, tiny_model):
    return tiny_model.save(tmp_path / "tiny.safetensors")


def _json(capsys, *argv) -> dict:
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_report_matches_the_trace(capsys, checkpoint, tiny_model):
    prompt = "First Citizen: é!"
    rep = _json(capsys, "--checkpoint", str(checkpoint), "--prompt", prompt, "--top-k", "4")
    trace = tiny_model.trace(prompt)
    assert rep["prompt"] == prompt and rep["tokens"] == list(trace.tokens)
    assert rep["display_tokens"][5] == "␣" and rep["ids"] == trace.ids.tolist()
    assert rep["unknown"] == [{"index": 15, "char": "é", "display": "é"}, {"index": 16, "char": "!", "display": "!"}]
    assert rep["cropped"] == 0
    want = np.argsort(-trace.probs[-1])[:4]
    assert [t["id"] for t in rep["top_k"]] == want.tolist()
    assert [t["rank"] for t in rep["top_k"]] == [1, 2, 3, 4]
    np.testing.assert_allclose([t["prob"] for t in rep["top_k"]], trace.probs[-1][want], rtol=1e-6)
    assert all(a["prob"] >= b["prob"] for a, b in zip(rep["top_k"], rep["top_k"][1:]))
    assert [t["token"] for t in rep["top_k"]] == [tiny_model.vocab[i] for i in want]
    sites = [e["site"] for e in rep["layernorm"]]
    assert sites == ["blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1", "blocks.1.ln2", "ln_final"]
    for e in rep["layernorm"]:
        st = trace.ln_stats[e["site"]]
        np.testing.assert_allclose(e["input_mean"], st.in_mean, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(e["input_std"], st.in_std, rtol=1e-6)
        assert e["mean_of_std"] == pytest.approx(float(st.in_std.mean()), rel=1e-6)
        assert e["min_std"] <= e["mean_of_std"] <= e["max_std"]
    assert rep["layernorm"][0]["layer"] == 0 and rep["layernorm"][-1]["layer"] is None
    assert rep["model"]["config"]["n_layer"] == 2 and rep["model"]["name"] == "tiny"


def test_text_report(capsys, checkpoint, tiny_model):
    assert main(["inspect", "--checkpoint", str(checkpoint), "--prompt", "All:\nSpeak, speak", "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    trace = tiny_model.trace("All:\nSpeak, speak")
    assert "tokens  17: A l l : ⏎ S p e a k , ␣ s p e a k" in out
    top = np.argsort(-trace.probs[-1])[:3]
    lines = [ln for ln in out.splitlines() if ln.strip().startswith(("1.", "2.", "3.", "4."))]
    assert len(lines) == 3
    for line, i in zip(lines, top):
        assert f"p={trace.probs[-1][i]:.4f}" in line
    for site in trace.ln_sites:
        st = trace.ln_stats[site]
        row = next(ln for ln in out.splitlines() if ln.strip().startswith(site + " "))
        assert f"{st.in_mean.mean():.4f}" in row and f"{st.in_std.max():.4f}" in row


def test_cropped_and_empty_prompts(capsys, checkpoint):
    rep = _json(capsys, "--checkpoint", str(checkpoint), "--prompt", "First Citizen:\n" * 4)
    assert rep["cropped"] == 60 - 32 and len(rep["tokens"]) == 32
    rep = _json(capsys, "--checkpoint", str(checkpoint), "--prompt", "")
    assert rep["tokens"] == [] and rep["top_k"] == [] and rep["layernorm"][0]["input_mean"] == []
    assert main(["inspect", "--checkpoint", str(checkpoint), "--prompt", "€€"]) == 0
    assert "nothing to predict" in capsys.readouterr().out


def test_prompt_from_stdin(capsys, monkeypatch, checkpoint):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("All:\n"))
    rep = _json(capsys, "--checkpoint", str(checkpoint), "--prompt", "-")
    assert rep["tokens"] == ["A", "l", "l", ":", "\n"]


def test_lecture_and_nanogpt_checkpoints(capsys, tmp_path, corpus_text, corpus_file):
    vocab = sorted(set(corpus_text))
    ref = LectureGPT(len(vocab), n_embd=8, n_head=2, n_layer=1, block_size=8).eval()
    randomize_reference(ref)
    torch.save(ref.state_dict(), tmp_path / "lecture.pt")
    rep = _json(capsys, "--checkpoint", str(tmp_path / "lecture.pt"), "--corpus", str(corpus_file), "--prompt", "All")
    with torch.no_grad():
        probs = torch.softmax(ref(torch.tensor([[vocab.index(c) for c in "All"]]))[0, -1], -1)
    assert rep["top_k"][0]["id"] == int(probs.argmax()) and rep["top_k"][0]["prob"] == pytest.approx(float(probs.max()), rel=1e-5)

    nano = NanoGPT(len(vocab), n_embd=8, n_head=2, n_layer=1, block_size=8)
    ckpt = save_nanogpt(tmp_path / "nano", nano)
    meta = write_meta(tmp_path / "vocab" / "meta.pkl", vocab)
    rep = _json(capsys, "--checkpoint", str(ckpt), "--meta", str(meta), "--prompt", "All")
    assert rep["model"]["family"] == "nanogpt" and len(rep["top_k"]) == 5


def _one_line_error(capsys, argv, code=1) -> str:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's errors exit from inside parse_args
        rc = e.code
    assert rc == code
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("gpt-explorer inspect: error: "), err
    assert "Traceback" not in captured.err and captured.out == ""
    return err


def test_errors_are_one_line(capsys, tmp_path, checkpoint, corpus_text):
    err = _one_line_error(capsys, ["inspect", "--checkpoint", str(tmp_path / "missing.pt"), "--prompt", "a"])
    assert "missing.pt: no such file" in err
    (tmp_path / "notes.txt").write_text("hello")
    assert "text file" in _one_line_error(capsys, ["inspect", "--checkpoint", str(tmp_path / "notes.txt"), "--prompt", "a"])
    assert "--top-k must be at least 1" in _one_line_error(
        capsys, ["inspect", "--checkpoint", str(checkpoint), "--prompt", "a", "--top-k", "0"])
    ref = LectureGPT(len(set(corpus_text)), n_embd=8, n_head=2, n_layer=1, block_size=8)
    torch.save(ref.state_dict(), tmp_path / "lecture.pt")
    assert "(pass --corpus)" in _one_line_error(capsys, ["inspect", "--checkpoint", str(tmp_path / "lecture.pt"),
                                                         "--prompt", "a"])
    assert "required: --prompt" in _one_line_error(capsys, ["inspect", "--checkpoint", str(checkpoint)], code=2)
    assert "invalid int value" in _one_line_error(capsys, ["inspect", "--prompt", "a", "--top-k", "x"], code=2)


def test_real_process_default_model_missing_and_warning(tmp_path, checkpoint):
    """As a user runs it: a separate process, the bundled model missing, then the 65-character warning."""
    env = dict(os.environ, GPT_EXPLORER_RESOURCES=str(tmp_path / "no-resources"))
    proc = subprocess.run([sys.executable, "-m", "explorer", "inspect", "--prompt", "ROMEO:"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "bundled default model is missing" in proc.stderr

    ref = LectureGPT(65, n_embd=8, n_head=2, n_layer=1, block_size=8)
    torch.save(ref.state_dict(), tmp_path / "shakespeare.pt")
    proc = subprocess.run([sys.executable, "-m", "explorer", "inspect", "--checkpoint", str(tmp_path / "shakespeare.pt"),
                           "--prompt", "ROMEO:", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().startswith("gpt-explorer inspect: warning:") and "Tiny Shakespeare" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert json.loads(proc.stdout)["tokens"] == list("ROMEO:")
