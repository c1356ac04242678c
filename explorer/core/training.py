"""Training a character-level GPT: a plain loop with events, stop/pause flags and atomic checkpoints.

No Qt here: the GUI drives a ``Trainer`` from a worker thread, the command line from the main one.

API::

    from explorer.core.data import load_corpus
    from explorer.core.training import Trainer, TrainConfig, preset

    model_cfg, train_cfg = preset("small")                   # "lecture" | "small" | "tiny"
    trainer = Trainer(load_corpus("input.txt"), train_cfg, model_config=model_cfg,
                      out="run.safetensors")                  # saved on every eval and at the end
    result = trainer.run(callback)                            # blocks; callback(event) on this thread
    # from any other thread, while run() works:
    trainer.request_stop()      # finishes the current step, saves, returns status "stopped"
    trainer.request_stop(save=False)  # the same without the final save
    trainer.pause(); trainer.resume()
    trainer.request_snapshot()  # the next event of kind "snapshot" carries event.state (a weight copy)
    state = trainer.snapshot()  # or take a consistent copy of the weights right now
    # afterwards:
    trainer.save("other.safetensors"); model = trainer.explorer_model()

    Trainer.from_checkpoint("run.safetensors")                # resume: same run, same optimizer state
    Trainer(corpus, cfg, model=explorer.load("x.pt"))         # fine-tune (corpus must fit its vocabulary)

Events (``TrainEvent``): ``kind`` is one of ``"start"``, ``"step"``, ``"eval"`` (``train_loss``,
``val_loss``, ``sample``), ``"checkpoint"`` (``path``), ``"snapshot"`` (``state``), ``"paused"``,
``"resumed"``, and the final ``"finished"`` / ``"stopped"`` / ``"diverged"`` (``message``). Every
event carries ``step``, ``max_iters``, the latest ``loss`` and ``lr``, ``tokens_per_s``,
``elapsed_s`` and ``eta_s``.

The learning rate warms up linearly for ``warmup_iters`` steps, then follows a cosine from ``lr``
down to ``min_lr`` at ``lr_decay_iters`` (nanoGPT's schedule; ``min_lr == lr`` gives the lecture's
constant rate). A NaN or infinite loss stops the run at once, without saving, so the last good
checkpoint on disk stays as it was.

Checkpoints are the native ``.safetensors`` format: the weights, plus the training state as
tensors prefixed ``optim.`` (AdamW moments and step counts, the RNG states), and JSON metadata
``train`` (step, best val loss, the training config, loss history, corpus name and SHA-256).
``explorer.load`` reads such a file as a plain model and ignores the training state.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .api import ExplorerModel
from .checkpoints import OPTIM_PREFIX, CheckpointError, read_native, save_native
from .data import Corpus, CorpusError, get_batch, load_corpus
from .model import GPT, GPTConfig, count_params


@dataclass
class TrainConfig:
    """Everything about the optimisation (the model's shape lives in ``GPTConfig``)."""

    batch_size: int = 32
    max_iters: int = 4000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: max_iters
    weight_decay: float = 0.01  # torch's AdamW default, as the lecture uses it
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0  # 0 disables clipping
    eval_interval: int = 500
    eval_iters: int = 100
    sample_chars: int = 200
    seed: int = 1337

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_iters", "eval_interval", "eval_iters"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.warmup_iters, int) or self.warmup_iters < 0:
            raise ValueError(f"warmup_iters must be an integer >= 0, got {self.warmup_iters!r}")
        if self.lr_decay_iters is not None and (not isinstance(self.lr_decay_iters, int) or self.lr_decay_iters < 1):
            raise ValueError(f"lr_decay_iters must be a positive integer, got {self.lr_decay_iters!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr must be between 0 and lr ({self.lr}), got {self.min_lr!r}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.sample_chars < 0:
            raise ValueError("weight_decay, grad_clip and sample_chars must be >= 0")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError("beta1 and beta2 must be in [0, 1)")

    def lr_at(self, step: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based)."""
        if self.warmup_iters and step < self.warmup_iters:
            return self.lr * (step + 1) / (self.warmup_iters + 1)
        decay = self.lr_decay_iters or self.max_iters
        if step >= decay:
            return self.min_lr
        span = max(decay - self.warmup_iters, 1)
        ratio = (step - self.warmup_iters) / span
        coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 → 0
        return self.min_lr + coeff * (self.lr - self.min_lr)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, tuple[dict, dict]] = {
    # the lecture's hyperparameters (constant learning rate, no warmup): 10.8M parameters
    "lecture": (dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
                dict(batch_size=64, max_iters=5000, lr=3e-4, min_lr=3e-4, warmup_iters=0, grad_clip=0.0,
                     eval_interval=500, eval_iters=200)),
    # about 0.8M parameters, trains on a laptop CPU in well under an hour (the bundled model is this
    # preset with max_iters=10000)
    "small": (dict(block_size=128, n_layer=4, n_head=4, n_embd=128, dropout=0.1),
              dict(batch_size=32, max_iters=4000, lr=1e-3, min_lr=1e-4, warmup_iters=100, grad_clip=1.0,
                   eval_interval=500, eval_iters=100)),
    # seconds: for tests and trying things out
    "tiny": (dict(block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.0),
             dict(batch_size=16, max_iters=200, lr=3e-3, min_lr=3e-4, warmup_iters=10, grad_clip=1.0,
                  eval_interval=50, eval_iters=10, sample_chars=80)),
}


def preset(name: str, family: str = "lecture", vocab_size: int = 65) -> tuple[GPTConfig, TrainConfig]:
    """The model and training configs of a named preset (``lecture``, ``small``, ``tiny``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    model_kw, train_kw = PRESETS[name]
    make = GPTConfig.nanogpt if family == "nanogpt" else GPTConfig.lecture
    return make(vocab_size=vocab_size, **model_kw), TrainConfig(**train_kw)


@dataclass
class TrainEvent:
    """One message from a running ``Trainer`` (see the module docstring for the kinds)."""

    kind: str
    step: int
    max_iters: int
    loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    sample: str | None = None
    path: str | None = None
    message: str | None = None
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)


@dataclass
class TrainResult:
    """What ``Trainer.run`` returns: ``status`` is ``"finished"``, ``"stopped"`` or ``"diverged"``."""

    status: str
    step: int
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    elapsed_s: float
    path: str | None
    message: str


class TrainingDiverged(RuntimeError):
    """Raised by ``Trainer.run(raise_on_divergence=True)``; the message says what happened."""


def make_optimizer(module: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over every parameter (as the lecture does), fused where this PyTorch supports it."""
    params = [p for p in module.parameters() if p.requires_grad]
    kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)
    try:
        return torch.optim.AdamW(params, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, foreach=False, **kw)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer's state into ``optim.state.{i}.{name}`` tensors plus JSON param groups."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            tensors[f"{OPTIM_PREFIX}state.{idx}.{name}"] = t.detach().clone()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], meta: Mapping) -> None:
    """Inverse of ``optimizer_tensors``."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    prefix = f"{OPTIM_PREFIX}state."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, name = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[name] = value.clone()
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


def _readable(path: Path) -> Path:
    """Give a saved file the usual permissions (the atomic temp file starts private)."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(path, 0o666 & ~umask)
    except OSError:
        pass
    return path


class Trainer:
    """Trains one GPT on one corpus. See the module docstring for the API."""

    def __init__(self, corpus: Corpus | str | Path, config: TrainConfig | None = None, *,
                 model_config: GPTConfig | None = None, model: ExplorerModel | None = None,
                 out: str | Path | None = None, info: Mapping[str, Any] | None = None) -> None:
        self.config = config or TrainConfig()
        if model is not None:  # fine-tuning: the corpus is encoded with the model's vocabulary
            if isinstance(model, ExplorerModel):
                vocab, module, base_info = model.vocab, model.module, dict(model.info)
            else:
                raise TypeError("model must be an ExplorerModel (it carries the vocabulary)")
            if not isinstance(corpus, Corpus):
                corpus = load_corpus(corpus, vocab=vocab)
            elif corpus.vocab != vocab:
                corpus = Corpus.from_text(corpus.text, name=corpus.name, vocab=vocab, path=corpus.path,
                                          sha256=corpus.sha256)
            cfg = module.config
            if model_config is not None and model_config.dropout != cfg.dropout:
                cfg = replace(cfg, dropout=model_config.dropout)
            self.module = GPT(cfg)
            self.module.load_state_dict(module.state_dict())
            self.info_base = {"finetuned_from": model.source or model.name,
                              "base_info": {k: base_info[k] for k in ("corpus", "val_loss", "iterations")
                                            if k in base_info}}
        else:
            if not isinstance(corpus, Corpus):
                corpus = load_corpus(corpus)
            cfg = replace(model_config or GPTConfig.lecture(), vocab_size=len(corpus.vocab))
            torch.manual_seed(self.config.seed)
            self.module = GPT(cfg)
            self.info_base = {}
        self.info_base.update(dict(info or {}))
        self.corpus = corpus
        self.vocab = corpus.vocab
        self.split = corpus.split(self.module.config.block_size)
        self.out = Path(out) if out is not None else None
        self.optimizer = make_optimizer(self.module, self.config)
        self.batch_gen = torch.Generator().manual_seed(self.config.seed)
        torch.manual_seed(self.config.seed)
        self.dropout_rng = torch.get_rng_state()  # dropout masks: swapped into torch's generator while running
        self.step = 0
        self.best_val_loss: float | None = None
        self.last_eval: dict[str, float] | None = None
        self.history: dict[str, list] = {"step": [], "loss": [], "eval": []}
        self.train_time_s = 0.0
        self.last_saved: Path | None = None
        self._stop = threading.Event()
        self._save_on_stop = True
        self._running = threading.Event()
        self._running.set()
        self._snapshot_wanted = threading.Event()
        self._lock = threading.Lock()  # held while the weights change (optimizer.step)
        self._step_lock = threading.Lock()  # held for a whole training step
        self._in_run = False

    # ---- resuming -------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, corpus: Corpus | str | Path | None = None, *,
                        out: str | Path | None = None, max_iters: int | None = None,
                        info: Mapping[str, Any] | None = None) -> "Trainer":
        """Continue the run saved in ``path``: same weights, optimizer state, step, loss history and
        random streams. ``corpus`` defaults to the recorded file and must have the recorded SHA-256;
        ``max_iters`` may extend the run; ``out`` defaults to ``path``."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(path, "no such checkpoint file")
        tensors, meta = read_native(path)
        train = meta.get("train")
        if not isinstance(train, dict) or f"{OPTIM_PREFIX}rng.batch" not in tensors:
            raise CheckpointError(path, "has no training state (optimizer, step) to resume from; it is a "
                                        "weights-only model: fine-tune it with --init instead")
        try:
            cfg = TrainConfig.from_dict(train["config"])
            step = int(train["step"])
            history = {k: list(train["history"][k]) for k in ("step", "loss", "eval")}
            opt_meta = train["optimizer"]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(path, f"the training state is incomplete or invalid ({e})") from e
        if max_iters is not None:
            if max_iters < step:
                raise ValueError(f"{path} is already at step {step}; max_iters {max_iters} would end the run "
                                 "before it starts")
            # extending keeps the schedule: after the original decay the rate stays at min_lr
            cfg = replace(cfg, max_iters=max_iters, lr_decay_iters=cfg.lr_decay_iters or cfg.max_iters)
        if corpus is None:
            corpus = train.get("corpus_path")
            if not corpus or not Path(corpus).is_file():
                raise CorpusError(corpus, "the run's corpus file is not there any more; pass it with --corpus")
        if not isinstance(corpus, Corpus):
            corpus = load_corpus(corpus, vocab=meta["vocab"])
        if corpus.sha256 != train.get("corpus_sha256"):
            raise CorpusError(corpus.path or corpus.name,
                              f"is not the corpus this run was trained on ({train.get('corpus_name')}, "
                              f"SHA-256 {str(train.get('corpus_sha256'))[:12]}…); to continue on new text, "
                              "fine-tune instead of resuming")
        from .checkpoints import load as load_model

        model = load_model(path)
        trainer = cls(corpus, cfg, model=model, out=out if out is not None else path)
        base = dict(meta.get("info", {}).get("run_info", {}))
        info = dict(info or {})
        if "command" in info and "command" in base:  # keep the command that started the run
            base["resumed_with"] = list(base.get("resumed_with", [])) + [info.pop("command")]
        base.update(info)
        trainer.info_base = base
        try:
            restore_optimizer(trainer.optimizer, tensors, opt_meta)
            trainer.batch_gen.set_state(tensors[f"{OPTIM_PREFIX}rng.batch"].clone())
            trainer.dropout_rng = tensors[f"{OPTIM_PREFIX}rng.torch"].clone()
        except (KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(path, f"the optimizer state does not fit this model ({e})") from e
        trainer.step = step
        trainer.best_val_loss = train.get("best_val_loss")
        trainer.last_eval = train.get("last_eval")
        trainer.history = history
        trainer.train_time_s = float(train.get("train_time_s", 0.0))
        return trainer

    # ---- control from other threads --------------------------------------------------------------
    def request_stop(self, save: bool = True) -> None:
        """Stop after the current step (a paused run stops too; a request made before ``run`` makes
        it return at once). ``save=False`` skips the final checkpoint: what the last evaluation
        saved stays on disk as it was. Thread-safe."""
        self._save_on_stop = bool(save)
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        """Hold the loop before the next step until ``resume()``. Thread-safe."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def request_snapshot(self) -> None:
        """Ask for a weight copy: the next ``"snapshot"`` event carries it. Thread-safe."""
        self._snapshot_wanted.set()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A consistent copy of the weights (never taken halfway through an update). Thread-safe."""
        with self._lock:
            return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    # ---- the loop --------------------------------------------------------------------------------
    def run(self, callback: Callable[[TrainEvent], None] | None = None, *,
            raise_on_divergence: bool = False) -> TrainResult:
        """Train until ``max_iters``, a stop request or divergence. Evaluates (and saves, when ``out``
        is set) every ``eval_interval`` steps and at the end."""
        if self._in_run:
            raise RuntimeError("this trainer is already running")
        emit = callback or (lambda event: None)
        self._in_run = True
        torch.set_rng_state(self.dropout_rng)
        try:
            return self._loop(emit, raise_on_divergence)
        finally:
            self.dropout_rng = torch.get_rng_state()
            self._in_run = False
            self._stop.clear()  # handled: the next run() starts afresh
            self._save_on_stop = True
            self.module.train(False)

    def _loop(self, emit: Callable[[TrainEvent], None], raise_on_divergence: bool = False) -> TrainResult:
        cfg = self.config
        B, T = cfg.batch_size, self.module.config.block_size
        t_start = time.perf_counter()
        time_before = self.train_time_s
        step_times: list[float] = []
        last_loss: float | None = self.history["loss"][-1] if self.history["loss"] else None
        lr = cfg.lr_at(self.step)

        def event(kind: str, **kw) -> TrainEvent:
            elapsed = time_before + time.perf_counter() - t_start
            mean = sum(step_times) / len(step_times) if step_times else None
            tps = B * T / mean if mean else None
            eta = mean * (cfg.max_iters - self.step) * (1 + self._eval_overhead()) if mean else None
            kw.setdefault("loss", last_loss)
            return TrainEvent(kind=kind, step=self.step, max_iters=cfg.max_iters, lr=lr, tokens_per_s=tps,
                              elapsed_s=elapsed, eta_s=eta, best_val_loss=self.best_val_loss, **kw)

        def finish(status: str, message: str) -> TrainResult:
            self.train_time_s = time_before + time.perf_counter() - t_start
            skip = status == "diverged" or (status == "stopped" and not self._save_on_stop)
            if not skip and self.out is not None:
                self.save(self.out)
                emit(event("checkpoint", path=str(self.out)))
            emit(event(status, message=message, path=str(self.last_saved) if self.last_saved else None))
            ev = self.last_eval or {}
            return TrainResult(status, self.step, ev.get("train"), ev.get("val"), self.best_val_loss,
                               self.train_time_s, str(self.last_saved) if self.last_saved else None, message)

        emit(event("start", message=f"training {count_params(self.module.config):,} parameters on "
                                    f"{self.corpus.name} ({len(self.corpus):,} characters)"))
        self.module.train()
        while self.step < cfg.max_iters:
            if not self._running.is_set():
                emit(event("paused"))
                while not self._running.wait(0.05):
                    if self._snapshot_wanted.is_set():  # live views may still ask while paused
                        self._snapshot_wanted.clear()
                        emit(event("snapshot", state=self.snapshot()))
                if not self._stop.is_set():
                    emit(event("resumed"))
            if self._stop.is_set():
                self.module.train(False)
                return finish("stopped", f"stopped at step {self.step}")
            t0 = time.perf_counter()
            lr = cfg.lr_at(self.step)
            with self._step_lock:  # a save from another thread sees a whole step or none of it
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                x, y = get_batch(self.split.train, B, T, self.batch_gen)  # (B, T), (B, T)
                _, loss = self.module(x, y)
                loss_value = float(loss.detach())
                if math.isfinite(loss_value):
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    norm = (torch.nn.utils.clip_grad_norm_(self.module.parameters(), cfg.grad_clip)
                            if cfg.grad_clip > 0 else None)
                    if norm is None or torch.isfinite(norm):
                        with self._lock:
                            self.optimizer.step()
                        self.step += 1
                        self.history["step"].append(self.step)
                        self.history["loss"].append(round(loss_value, 5))
            if not math.isfinite(loss_value):
                return self._diverged(finish, loss_value, raise_on_divergence)
            if norm is not None and not torch.isfinite(norm):
                return self._diverged(finish, float(norm), raise_on_divergence, what="gradient norm")
            last_loss = loss_value
            step_times.append(time.perf_counter() - t0)
            if len(step_times) > 50:
                step_times.pop(0)
            emit(event("step"))
            if self._snapshot_wanted.is_set():
                self._snapshot_wanted.clear()
                emit(event("snapshot", state=self.snapshot()))
            if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters:
                self.train_time_s = time_before + time.perf_counter() - t_start
                ev = self.evaluate(interruptible=True)
                if ev is None:  # a stop request arrived during the evaluation
                    return finish("stopped", f"stopped at step {self.step} (during its evaluation)")
                emit(event("eval", train_loss=ev["train"], val_loss=ev["val"], sample=ev.get("sample")))
                unwanted = self._stop.is_set() and not self._save_on_stop  # "stop without saving" came in
                if self.out is not None and self.step < cfg.max_iters and not unwanted:
                    self.save(self.out)
                    emit(event("checkpoint", path=str(self.out)))
                self.module.train()
        self.module.train(False)
        ev = self.last_eval or {}
        return finish("finished", f"finished {self.step} steps: train loss {ev.get('train', float('nan')):.4f}, "
                                  f"val loss {ev.get('val', float('nan')):.4f}")

    def _diverged(self, finish, value: float, raise_it: bool, what: str = "loss") -> TrainResult:
        self.module.train(False)
        kept = (f"the last good checkpoint {self.last_saved} is kept" if self.last_saved
                else "no checkpoint had been saved yet")
        msg = (f"training diverged: the {what} became {value} at step {self.step + 1}; stopped without "
               f"saving ({kept}). Try a lower learning rate (now {self.config.lr:g}) or gradient clipping.")
        result = finish("diverged", msg)
        if raise_it:
            raise TrainingDiverged(msg)
        return result

    def _eval_overhead(self) -> float:
        # an eval costs about 2 * eval_iters forward passes ≈ 2/3 * eval_iters training steps
        return (2 * self.config.eval_iters / 3) / self.config.eval_interval

    @torch.no_grad()
    def evaluate(self, eval_iters: int | None = None, sample: bool = True,
                 interruptible: bool = False) -> dict[str, Any] | None:
        """Mean loss over ``eval_iters`` random batches of each split (the same batches every time),
        and a short sample. Updates ``best_val_loss`` and the eval history. With ``interruptible``,
        a stop request abandons the evaluation and ``None`` is returned."""
        cfg = self.config
        n = eval_iters or cfg.eval_iters
        B, T = cfg.batch_size, self.module.config.block_size
        was_training = self.module.training
        self.module.eval()
        out: dict[str, Any] = {}
        for name, data in (("train", self.split.train), ("val", self.split.val)):
            gen = torch.Generator().manual_seed(cfg.seed + (1 if name == "train" else 2))
            total = 0.0
            for _ in range(n):
                if interruptible and self._stop.is_set():
                    self.module.train(was_training)
                    return None
                x, y = get_batch(data, B, T, gen)
                _, loss = self.module(x, y)
                total += float(loss)
            out[name] = total / n
        if sample and cfg.sample_chars:
            out["sample"] = self.sample(cfg.sample_chars)
        self.module.train(was_training)
        with self._step_lock:
            self.last_eval = {"train": out["train"], "val": out["val"]}
            if math.isfinite(out["val"]) and (self.best_val_loss is None or out["val"] < self.best_val_loss):
                self.best_val_loss = out["val"]
            self.history["eval"].append({"step": self.step, "train": round(out["train"], 5),
                                         "val": round(out["val"], 5)})
        return out

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> str:
        """``n`` characters generated from a newline (or token 0), with a fixed seed per step."""
        tok = self.corpus.tokenizer
        start = tok.stoi.get("\n", 0)
        gen = torch.Generator().manual_seed(self.config.seed + self.step if seed is None else seed)
        was_training = self.module.training
        self.module.eval()
        ids = self.module.generate(torch.tensor([[start]]), n, generator=gen)
        self.module.train(was_training)
        return tok.decode(ids[0, 1:].tolist())

    # ---- saving ----------------------------------------------------------------------------------
    def run_info(self) -> dict[str, Any]:
        """The human-facing ``info`` metadata of a checkpoint of this run."""
        ev = self.last_eval or {}
        info = dict(self.info_base)
        info.update({
            "iterations": self.step,
            "max_iters": self.config.max_iters,
            "train_loss": round(ev["train"], 4) if "train" in ev else None,
            "val_loss": round(ev["val"], 4) if "val" in ev else None,
            "best_val_loss": round(self.best_val_loss, 4) if self.best_val_loss is not None else None,
            "training_time_s": round(self.train_time_s, 1),
            "corpus": self.corpus.name,
            "corpus_sha256": self.corpus.sha256,
            "corpus_chars": len(self.corpus),
            "n_params": count_params(self.module.config),
            "train_config": self.config.to_dict(),
            "eval_history": list(self.history["eval"]),
            "torch": torch.__version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        info["run_info"] = dict(self.info_base)
        return info

    def save(self, path: str | Path, *, weights_only: bool = False) -> Path:
        """Write a checkpoint atomically. With ``weights_only`` the training state is left out (a
        smaller file that loads as a model but cannot be resumed)."""
        path = Path(path)
        with self._step_lock, self._lock:
            info = self.run_info()
            if weights_only:
                info.pop("run_info", None)
                return _readable(save_native(path, self.module, self.vocab, info=info))
            tensors, opt_meta = optimizer_tensors(self.optimizer)
            tensors[f"{OPTIM_PREFIX}rng.batch"] = self.batch_gen.get_state()
            tensors[f"{OPTIM_PREFIX}rng.torch"] = torch.get_rng_state() if self._in_run else self.dropout_rng
            train = {"step": self.step, "best_val_loss": self.best_val_loss, "last_eval": self.last_eval,
                     "config": self.config.to_dict(), "optimizer": opt_meta, "history": self.history,
                     "train_time_s": self.train_time_s, "corpus_name": self.corpus.name,
                     "corpus_path": str(Path(self.corpus.path).resolve()) if self.corpus.path else None,
                     "corpus_sha256": self.corpus.sha256}
            saved = save_native(path, self.module, self.vocab, info=info, extra_tensors=tensors,
                                extra_meta={"train": train})
        self.last_saved = _readable(saved)
        return saved

    def explorer_model(self, name: str = "trained") -> ExplorerModel:
        """A separate ``ExplorerModel`` holding a copy of the current weights."""
        module = GPT(self.module.config)
        module.load_state_dict(self.snapshot())
        return ExplorerModel(module, self.vocab, name=name, info=self.run_info())
