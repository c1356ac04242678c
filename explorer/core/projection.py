"""Embedding tables drawn in 2-D: PCA, t-SNE, cosine neighbours, character classes and a cache.

No Qt here, and scikit-learn is imported only when a t-SNE is asked for.

* ``pca(X)`` → ``PCAResult``: the principal axes of a table ``(N, C)``, its explained variance,
  and ``transform`` to put other vectors (the residual stream) into the same basis.
* ``tsne(X, perplexity, max_iter, seed)`` → ``(N, 2)``: scikit-learn's t-SNE, in this process,
  blocking. Scripts and the headless export use it.
* ``TsneWorker``: the same t-SNE in a child process, one job at a time, with progress events and a
  cancel that takes effect at once. scikit-learn holds the GIL in parts of t-SNE, so a thread
  would stall a GUI; a process cannot. The child is this very file, loaded by path (no package
  import, so no torch), and stays alive between jobs so only the first one pays for starting it.
* ``cosine_neighbors(X, i, k)`` / ``CosineIndex``: the ``k`` rows most similar to row ``i`` (or
  to any vector) by cosine.
* ``char_class(ch)``: lowercase vowel, lowercase consonant, uppercase, digit, punctuation,
  whitespace or other: what the embedding views colour points by.
* ``table_key`` / ``ProjectionCache``: results keyed by model name, weights version, a digest of
  the table and the projection's parameters, so a new prompt never recomputes a projection.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import numpy as np

# ---- character classes --------------------------------------------------------------------------
CHAR_CLASSES = ("lowercase vowel", "lowercase consonant", "uppercase", "digit", "punctuation",
                "whitespace", "other")
VOWEL, CONSONANT, UPPER, DIGIT, PUNCT, SPACE, OTHER = range(7)
_VOWELS = set("aeiou")  # y counts as a consonant, as in most teaching material


def char_class(ch: str) -> int:
    """The class index (into ``CHAR_CLASSES``) of a one-character token. Accented vowels (é, ü)
    count as vowels; symbols such as ``$`` and ``&`` count as punctuation."""
    if len(ch) != 1:
        return OTHER
    if ch.isspace():
        return SPACE
    if ch.isdigit():
        return DIGIT
    if ch.isalpha():
        if ch.isupper():
            return UPPER
        if ch.islower():
            base = unicodedata.normalize("NFD", ch)[0]
            return VOWEL if base in _VOWELS else CONSONANT
        return OTHER
    cat = unicodedata.category(ch)
    if cat[0] in ("P", "S"):
        return PUNCT
    return OTHER


def char_classes(vocab) -> np.ndarray:
    """``char_class`` of every vocabulary entry, (V,) int."""
    return np.fromiter((char_class(c) for c in vocab), dtype=np.int64, count=len(vocab))


# ---- BLAS threads -------------------------------------------------------------------------------
_controller = None


def single_thread_blas():
    """A context in which numpy's BLAS/LAPACK use one thread. The tables here are small; on a busy
    machine a multi-threaded ``eigh`` of a 65 × 65 matrix spins for 100+ ms instead of 0.3 ms."""
    global _controller
    try:
        if _controller is None:
            from threadpoolctl import ThreadpoolController  # ships with scikit-learn

            _controller = ThreadpoolController()
        return _controller.limit(limits=1, user_api="blas")
    except Exception:  # no threadpoolctl: run as is
        return contextlib.nullcontext()


# ---- PCA ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PCAResult:
    """Principal axes of a table ``(N, C)``, largest variance first.

    ``components`` is ``(K, C)`` with ``K = min(N, C)`` orthonormal rows; each row's sign is fixed
    so that its largest-magnitude entry is positive (the same rows on every run).
    """

    mean: np.ndarray  # (C,)
    components: np.ndarray  # (K, C)
    explained_variance: np.ndarray  # (K,)  variance along each axis (divided by N - 1, as sklearn)
    explained_variance_ratio: np.ndarray  # (K,)  fraction of the total variance
    coords: np.ndarray  # (N, 2) the table itself in the first two axes

    @property
    def cumulative(self) -> np.ndarray:
        """Cumulative explained-variance fraction for 1..K components, (K,)."""
        return np.cumsum(self.explained_variance_ratio)

    def transform(self, X, n: int = 2) -> np.ndarray:
        """Project vectors ``(..., C)`` onto the first ``n`` axes → ``(..., n)``."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"vectors have {X.shape[-1]} channels but the basis was fitted on "
                             f"{self.mean.shape[0]}")
        comps = self.components[:n]
        out = (X - self.mean) @ comps.T
        if comps.shape[0] < n:  # fewer axes than asked (a 1-row table): pad with zeros
            pad = np.zeros(out.shape[:-1] + (n - comps.shape[0],))
            out = np.concatenate([out, pad], axis=-1)
        return out

    def dims_for(self, fraction: float) -> int:
        """The fewest components that keep at least ``fraction`` of the variance (0 < f ≤ 1)."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        cum = self.cumulative
        if cum.size == 0 or not np.isfinite(cum[-1]) or cum[-1] <= 0:
            return 0
        return int(min(np.searchsorted(cum, fraction - 1e-12) + 1, cum.size))


def pca(X) -> PCAResult:
    """PCA of ``X`` (N, C) by an eigen-decomposition of the smaller Gram matrix, in float64.

    Matches ``sklearn.decomposition.PCA`` up to the sign of each axis. A table with fewer than two
    rows has no variance: every ratio is 0.
    """
    with single_thread_blas():
        return _pca(X)


def _pca(X) -> PCAResult:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"PCA needs a 2-D table (N, C), got shape {X.shape}")
    N, C = X.shape
    if N == 0 or C == 0:
        raise ValueError(f"PCA needs a non-empty table, got shape {X.shape}")
    mean = X.mean(axis=0)
    Xc = X - mean
    K = min(N, C)
    if N <= C:  # (N, N) Gram matrix: eigenvectors u give axes Xcᵀu / ‖·‖
        w, U = np.linalg.eigh(Xc @ Xc.T)
        order = np.argsort(w)[::-1][:K]
        w, U = np.clip(w[order], 0.0, None), U[:, order]
        comps = Xc.T @ U  # (C, K)
        norms = np.linalg.norm(comps, axis=0)
        safe = norms > 1e-12 * max(1.0, float(norms.max(initial=0.0)))
        comps = np.where(safe, comps / np.where(safe, norms, 1.0), 0.0).T  # (K, C)
    else:  # (C, C) covariance
        w, Vec = np.linalg.eigh(Xc.T @ Xc)
        order = np.argsort(w)[::-1][:K]
        w, comps = np.clip(w[order], 0.0, None), Vec[:, order].T  # (K, C)
    # a fixed sign per axis: the largest-magnitude loading is positive
    idx = np.argmax(np.abs(comps), axis=1)
    signs = np.sign(comps[np.arange(comps.shape[0]), idx])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    var = w / max(N - 1, 1)
    total = float(var.sum())
    ratio = var / total if total > 0 else np.zeros_like(var)
    coords = Xc @ comps[:2].T
    if coords.shape[1] < 2:
        coords = np.concatenate([coords, np.zeros((N, 2 - coords.shape[1]))], axis=1)
    return PCAResult(mean=mean, components=comps, explained_variance=var,
                     explained_variance_ratio=ratio, coords=coords)


# ---- cosine neighbours --------------------------------------------------------------------------
def _unit_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, n, out=np.zeros_like(X), where=n > 0)


class CosineIndex:
    """Unit-length rows of a table, kept for repeated neighbour look-ups (hover, click)."""

    def __init__(self, X) -> None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"a cosine index needs a 2-D table (N, C), got shape {X.shape}")
        self.norms = np.linalg.norm(X, axis=1)  # (N,)
        self.unit = _unit_rows(X)  # (N, C)

    def __len__(self) -> int:
        return self.unit.shape[0]

    def neighbors(self, i: int, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` rows most similar to row ``i``, best first, without ``i`` itself. Ties go to
        the lower row index; a zero row has similarity 0 to everything."""
        N = len(self)
        if not 0 <= i < N:
            raise IndexError(f"row {i} is outside a table of {N} rows")
        sims = self.unit @ self.unit[i]
        sims[i] = -np.inf
        return self._top(sims, k)

    def query(self, v, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` rows most similar to an outside vector ``v`` (C,)."""
        v = np.asarray(v, dtype=np.float64)
        n = float(np.linalg.norm(v))
        sims = self.unit @ (v / n) if n > 0 else np.zeros(len(self))
        return self._top(sims, k)

    @staticmethod
    def _top(sims: np.ndarray, k: int) -> list[tuple[int, float]]:
        N = sims.shape[0]
        k = max(0, min(k, int(np.isfinite(sims).sum())))
        if k == 0:
            return []
        if N > 4 * k + 64:  # big tables: a partial sort, then order the few candidates (ties: lower id)
            kth = np.partition(-sims, k - 1)[k - 1]
            cand = np.flatnonzero(-sims <= kth)
            order = cand[np.lexsort((cand, -sims[cand]))][:k]
        else:
            order = np.lexsort((np.arange(N), -sims))[:k]
        return [(int(j), float(sims[j])) for j in order]


def cosine_neighbors(X, i: int, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` rows of ``X`` most similar to row ``i`` by cosine: ``[(row, similarity), ...]``."""
    return CosineIndex(X).neighbors(i, k)


def cosine_neighbors_all(X, k: int = 5, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``cosine_neighbors`` for every row at once, in chunks: (N, k) row ids and (N, k) similarities."""
    U = _unit_rows(X)
    N = U.shape[0]
    k = max(0, min(k, N - 1))
    ids = np.zeros((N, k), np.int64)
    sims = np.zeros((N, k), np.float64)
    for a in range(0, N, chunk):
        S = U[a:a + chunk] @ U.T  # (chunk, N)
        rows = np.arange(a, min(a + chunk, N))
        S[rows - a, rows] = -np.inf
        part = np.argsort(-S, axis=1, kind="stable")[:, :k]
        ids[a:a + len(rows)] = part
        sims[a:a + len(rows)] = np.take_along_axis(S, part, axis=1)
    return ids, sims


# ---- t-SNE --------------------------------------------------------------------------------------
TSNE_EXACT_MAX_ROWS = 500  # up to this many rows the exact gradient; above it Barnes-Hut


def default_threads() -> int:
    """Threads for t-SNE's OpenMP loops: half the cores, at most 4. On a busy machine more
    threads only spin against each other."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def validate_tsne(n_rows: int, n_cols: int, perplexity: float, max_iter: int) -> None:
    """Raise ``ValueError`` with a plain message when t-SNE cannot run with these settings."""
    if n_rows < 4 or n_cols < 2:
        raise ValueError(f"t-SNE needs a table of at least 4 rows and 2 columns; this one is "
                         f"{n_rows} × {n_cols}")
    if not 0 < perplexity < n_rows:
        raise ValueError(f"perplexity must be above 0 and below the number of points ({n_rows}); "
                         f"got {perplexity:g}")
    if max_iter < 250:
        raise ValueError(f"t-SNE needs at least 250 iterations; got {max_iter}")


def tsne(X, perplexity: float = 30.0, max_iter: int = 1000, seed: int = 0, *,
         n_threads: int | None = None, verbose: int = 0) -> np.ndarray:
    """scikit-learn's t-SNE of ``X`` (N, C) → (N, 2), here and now (blocking).

    PCA initialisation and a fixed ``seed`` make the layout repeatable. Up to
    ``TSNE_EXACT_MAX_ROWS`` rows the exact method is used, above that Barnes-Hut."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"t-SNE needs a 2-D table (N, C), got shape {X.shape}")
    validate_tsne(X.shape[0], X.shape[1], float(perplexity), int(max_iter))
    from sklearn.manifold import TSNE  # lazily: only when a t-SNE is asked for
    from threadpoolctl import threadpool_limits

    iters = "max_iter" if "max_iter" in inspect.signature(TSNE.__init__).parameters else "n_iter"
    model = TSNE(n_components=2, perplexity=float(perplexity), init="pca", learning_rate="auto",
                 random_state=int(seed), method="exact" if X.shape[0] <= TSNE_EXACT_MAX_ROWS else "barnes_hut",
                 verbose=verbose, **{iters: int(max_iter)})
    with threadpool_limits(limits=n_threads or default_threads()):
        Y = model.fit_transform(X)
    return np.asarray(Y, dtype=np.float64)


@dataclass(frozen=True)
class TsneEvent:
    """What a ``TsneWorker`` reports. ``kind`` is one of ``progress``, ``done``, ``error``,
    ``cancelled``; ``done`` carries ``result`` (N, 2). A progress event with ``iteration`` -1 only
    says which phase t-SNE is in (neighbours, affinities)."""

    job: int
    kind: str
    iteration: int = 0
    total: int = 0
    message: str = ""
    result: np.ndarray | None = None
    elapsed_s: float = 0.0


_ITER_RE = re.compile(r"Iteration (\d+)")


class TsneWorker:
    """Runs ``tsne`` in a child process, one job at a time.

    ``submit`` returns a job id, or ``None`` when a job is already running (a second request never
    starts a second job). Events (``TsneEvent``) are passed to ``on_event`` from a background
    thread. ``cancel`` kills the child at once; the next job starts a fresh one.
    """

    def __init__(self, on_event: Callable[[TsneEvent], None] | None = None, *,
                 n_threads: int | None = None) -> None:
        self.on_event = on_event
        self.n_threads = n_threads or default_threads()
        self.jobs_started = 0
        self._lock = threading.Lock()
        self._spawn_lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._job = 0
        self._busy = False
        self._cancelled: set[int] = set()
        self._tmp = tempfile.mkdtemp(prefix="gptx-tsne-")
        self._closed = False

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def current_job(self) -> int | None:
        return self._job if self._busy else None

    def submit(self, X, *, perplexity: float = 30.0, max_iter: int = 1000, seed: int = 0) -> int | None:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"t-SNE needs a 2-D table (N, C), got shape {X.shape}")
        validate_tsne(X.shape[0], X.shape[1], float(perplexity), int(max_iter))
        with self._lock:
            if self._closed:
                raise RuntimeError("this t-SNE worker has been closed")
            if self._busy:
                return None
            self._busy = True
            self._job += 1
            job = self._job
            self.jobs_started += 1
        params = dict(perplexity=float(perplexity), max_iter=int(max_iter), seed=int(seed))
        self._thread = threading.Thread(target=self._run, args=(job, X, params), daemon=True,
                                        name=f"tsne-job-{job}")
        self._thread.start()
        return job

    def cancel(self) -> bool:
        """Stop the running job now. Returns False when nothing was running."""
        with self._lock:
            if not self._busy:
                return False
            self._cancelled.add(self._job)
            proc, self._proc = self._proc, None
        if proc is not None:
            _kill(proc)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current job (if any) has ended. Returns False on timeout."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def close(self) -> None:
        """Cancel any job, end the child process and remove the temporary files."""
        self.cancel()
        self.wait(5.0)
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)
        for name in os.listdir(self._tmp) if os.path.isdir(self._tmp) else []:
            try:
                os.remove(os.path.join(self._tmp, name))
            except OSError:
                pass
        try:
            os.rmdir(self._tmp)
        except OSError:
            pass

    def __del__(self) -> None:  # the child also exits by itself when our end of its stdin closes
        try:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                _kill(proc)
        except Exception:
            pass

    # ---- background thread --------------------------------------------------------------------
    def _emit(self, event: TsneEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a receiver that has gone away must not kill the job's thread
                pass

    def _start_process(self, job: int) -> subprocess.Popen | None:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.n_threads), PYTHONUNBUFFERED="1")
        code = ("import importlib.util, sys; "
                "s = importlib.util.spec_from_file_location('gptx_projection_worker', sys.argv[1]); "
                "m = importlib.util.module_from_spec(s); sys.modules[s.name] = m; "
                "s.loader.exec_module(m); m._serve()")
        err = open(os.path.join(self._tmp, "stderr.txt"), "wb")
        try:
            proc = subprocess.Popen([sys.executable, "-c", code, os.path.abspath(__file__)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                    cwd=self._tmp, env=env, text=True, bufsize=1)
        finally:
            err.close()
        with self._lock:
            if job in self._cancelled or self._closed:
                _kill(proc)
                return None
            self._proc = proc
        return proc

    def _stderr_tail(self) -> str:
        try:
            with open(os.path.join(self._tmp, "stderr.txt"), encoding="utf-8", errors="replace") as f:
                lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
            return lines[-1] if lines else ""
        except OSError:
            return ""

    def _run(self, job: int, X: np.ndarray, params: dict) -> None:
        t0 = time.perf_counter()
        final: TsneEvent | None = None
        try:
            final = self._run_inner(job, X, params, t0)
        except Exception as exc:  # a broken pipe or a vanished process
            final = None if job in self._cancelled else TsneEvent(job, "error", message=f"t-SNE failed: {exc}")
        finally:
            with self._lock:
                cancelled = job in self._cancelled
                self._cancelled.discard(job)
                if self._proc is not None and self._proc.poll() is not None:  # it died: start afresh next time
                    self._proc = None
                self._busy = False
            if cancelled:
                final = TsneEvent(job, "cancelled", message="t-SNE cancelled",
                                  elapsed_s=time.perf_counter() - t0)
            if final is not None:
                self._emit(final)

    def _ensure_process(self, job: int) -> subprocess.Popen | None:
        """The live child, started (and waited for until it has loaded scikit-learn) if needed.
        None when it was cancelled or died on the way."""
        with self._spawn_lock:
            with self._lock:
                proc = self._proc if self._proc is not None and self._proc.poll() is None else None
            if proc is None:
                if job:
                    self._emit(TsneEvent(job, "progress", -1, 0,
                                         "starting the t-SNE worker (loading scikit-learn)…"))
                proc = self._start_process(job)
                if proc is None:
                    return None
                if not proc.stdout.readline():
                    return None
            return proc

    def prewarm(self) -> None:
        """Start the child now, in the background, so the first t-SNE only pays for the maths."""
        with self._lock:
            if self._closed or self._busy or (self._proc is not None and self._proc.poll() is None):
                return
        threading.Thread(target=self._ensure_process, args=(0,), daemon=True, name="tsne-prewarm").start()

    def _run_inner(self, job: int, X: np.ndarray, params: dict, t0: float) -> TsneEvent | None:
        total = params["max_iter"]
        proc = self._ensure_process(job)
        if proc is None:
            return None if job in self._cancelled else TsneEvent(
                job, "error", message="the t-SNE worker could not start" +
                (f": {self._stderr_tail()}" if self._stderr_tail() else ""))
        in_path = os.path.join(self._tmp, f"in-{job}.npy")
        out_path = os.path.join(self._tmp, f"out-{job}.npy")
        np.save(in_path, X)
        proc.stdin.write(json.dumps(dict(params, job=job, inp=in_path, out=out_path)) + "\n")
        proc.stdin.flush()
        self._emit(TsneEvent(job, "progress", 0, total, f"t-SNE of {X.shape[0]} points…"))
        try:
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("job") != job:
                    continue
                ev = msg.get("event")
                if ev == "progress":
                    self._emit(TsneEvent(job, "progress", int(msg.get("iteration", 0)), total,
                                         str(msg.get("message", "")), elapsed_s=time.perf_counter() - t0))
                elif ev == "done":
                    Y = np.load(out_path)
                    return TsneEvent(job, "done", total, total, "done", result=Y,
                                     elapsed_s=time.perf_counter() - t0)
                elif ev == "error":
                    return TsneEvent(job, "error", message=str(msg.get("message", "t-SNE failed")),
                                     elapsed_s=time.perf_counter() - t0)
            return None if job in self._cancelled else self._died(job, proc)
        finally:
            for p in (in_path, out_path):
                try:
                    os.remove(p)
                except OSError:
                    pass

    def _died(self, job: int, proc: subprocess.Popen) -> TsneEvent:
        try:
            code = proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            code = None
        tail = self._stderr_tail()
        return TsneEvent(job, "error", message=f"the t-SNE worker stopped unexpectedly (exit code {code})"
                                                + (f": {tail}" if tail else ""))


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
        proc.wait(timeout=5.0)
    except Exception:
        pass


def _stop(proc: subprocess.Popen) -> None:
    """End an idle child politely (close its stdin), then firmly."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=2.0)
    except Exception:
        _kill(proc)


class _ProgressStream:
    """Stands in for ``sys.stdout`` in the child: turns scikit-learn's verbose lines into events."""

    def __init__(self, out, job: int) -> None:
        self.out, self.job, self._buf = out, job, ""

    def write(self, s: str) -> int:
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            line = line.strip()
            if not line:
                continue
            m = _ITER_RE.search(line)
            _send(self.out, dict(job=self.job, event="progress", iteration=int(m.group(1)) if m else -1,
                                 message=line.replace("[t-SNE] ", "")))
        return len(s)

    def flush(self) -> None:
        pass


def _send(out, msg: dict) -> None:
    out.write(json.dumps(msg) + "\n")
    out.flush()


def _serve() -> None:
    """The child process's loop: one JSON request per stdin line; events as JSON lines on stdout."""
    out = sys.stdout
    try:
        os.nice(5)  # the GUI and the forward passes come first
    except (AttributeError, OSError):
        pass
    import sklearn.manifold  # noqa: F401  (pay the import before saying ready)

    _send(out, dict(job=0, event="ready"))
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        job = int(req.get("job", 0))
        sys.stdout = _ProgressStream(out, job)
        try:
            X = np.load(req["inp"])
            Y = tsne(X, req["perplexity"], req["max_iter"], req["seed"], verbose=2)
            np.save(req["out"], Y)
            sys.stdout = out
            _send(out, dict(job=job, event="done"))
        except Exception as exc:
            sys.stdout = out
            _send(out, dict(job=job, event="error", message=f"{type(exc).__name__}: {exc}"))
        finally:
            sys.stdout = out


# ---- cache --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableKey:
    """Identifies one embedding table: the model's name, its weights version and a digest."""

    model: str
    weights_version: int
    name: str
    shape: tuple[int, ...]
    digest: str


def table_key(model: str, weights_version: int, name: str, X) -> TableKey:
    X = np.ascontiguousarray(X)
    digest = hashlib.blake2b(X.view(np.uint8).reshape(-1), digest_size=12).hexdigest()
    return TableKey(str(model), int(weights_version), name, tuple(X.shape), digest)


def projection_key(table: TableKey, method: str, **params: Any) -> tuple:
    return (table, method, tuple(sorted(params.items())))


class ProjectionCache:
    """A small least-recently-used map from ``projection_key`` to results."""

    def __init__(self, maxsize: int = 32) -> None:
        self.maxsize = maxsize
        self._d: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
            return default

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


CACHE = ProjectionCache()  # the process-wide cache the panels and the export share


def cached_pca(key: TableKey, X, cache: ProjectionCache = CACHE) -> PCAResult:
    k = projection_key(key, "pca")
    res = cache.get(k)
    if res is None:
        res = pca(X)
        cache.put(k, res)
    return res
