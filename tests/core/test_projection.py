"""PCA against scikit-learn, cosine neighbours on constructed tables, character classes, the cache,
and the t-SNE worker process (one job at a time, cancellable, same numbers as in-process)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from explorer.core import projection as pj


def _same_up_to_sign(a: np.ndarray, b: np.ndarray, atol: float = 1e-8) -> bool:
    """Columns of a equal columns of b, each possibly negated."""
    for j in range(a.shape[1]):
        if not (np.allclose(a[:, j], b[:, j], atol=atol) or np.allclose(a[:, j], -b[:, j], atol=atol)):
            return False
    return True


@pytest.mark.parametrize("shape", [(65, 32), (20, 64), (5, 3)])
def test_pca_matches_sklearn_up_to_sign(shape):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    X = rng.normal(size=shape) * rng.uniform(0.2, 3.0, size=shape[1])
    ours = pj.pca(X)
    ref = PCA().fit(X)
    k = min(shape)
    np.testing.assert_allclose(ours.explained_variance_ratio[: k - 1], ref.explained_variance_ratio_[: k - 1],
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.explained_variance[: k - 1], ref.explained_variance_[: k - 1], rtol=1e-8)
    assert _same_up_to_sign(ours.coords, ref.transform(X)[:, :2], atol=1e-8)
    assert _same_up_to_sign(ours.components[: k - 1].T, ref.components_[: k - 1].T, atol=1e-8)
    # other vectors land in the same basis
    Y = rng.normal(size=(7, shape[1]))
    assert _same_up_to_sign(ours.transform(Y), ref.transform(Y)[:, :2], atol=1e-8)


def test_pca_signs_are_fixed_and_dims_for_known_variances():
    a, b, c = 3.0, 1.0, 0.3
    X = np.array([[a, 0, 0], [-a, 0, 0], [0, b, 0], [0, -b, 0], [0, 0, c], [0, 0, -c]])
    r = pj.pca(X)
    total = a * a + b * b + c * c
    np.testing.assert_allclose(r.explained_variance_ratio, [a * a / total, b * b / total, c * c / total])
    assert r.dims_for(0.85) == 1 and r.dims_for(0.9) == 2 and r.dims_for(0.99) == 2 and r.dims_for(0.999) == 3
    assert np.all(np.abs(r.components).max(axis=1) == r.components.max(axis=1))  # largest loading positive
    with pytest.raises(ValueError, match="fraction"):
        r.dims_for(0.0)


def test_pca_bad_input_and_single_row():
    with pytest.raises(ValueError, match="2-D"):
        pj.pca(np.zeros(5))
    with pytest.raises(ValueError, match="non-empty"):
        pj.pca(np.zeros((0, 4)))
    r = pj.pca(np.ones((1, 4)))
    assert r.coords.shape == (1, 2) and np.all(r.explained_variance_ratio == 0)
    with pytest.raises(ValueError, match="channels"):
        r.transform(np.zeros((2, 3)))


def test_cosine_neighbors_on_constructed_angles():
    # rows on a circle at known angles (degrees), with different lengths: cosine ignores length
    angles = np.array([0, 100, 10, 45, 180, 30, 5, 90])
    norms = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 0.1, 7.0, 1.0])
    X = np.zeros((len(angles), 6))
    X[:, 0] = norms * np.cos(np.radians(angles))
    X[:, 1] = norms * np.sin(np.radians(angles))
    got = pj.cosine_neighbors(X, 0, k=5)
    assert [j for j, _ in got] == [6, 2, 5, 3, 7]  # 5°, 10°, 30°, 45°, 90°
    np.testing.assert_allclose([s for _, s in got], np.cos(np.radians([5, 10, 30, 45, 90])), atol=1e-12)
    idx = pj.CosineIndex(X)
    np.testing.assert_allclose(idx.norms, norms)
    assert [j for j, _ in idx.query(np.array([0.0, 1.0, 0, 0, 0, 0]), 2)] == [7, 1]  # 90°, then 100°
    ids, sims = pj.cosine_neighbors_all(X, k=5, chunk=3)
    for i in range(len(X)):
        assert ids[i].tolist() == [j for j, _ in pj.cosine_neighbors(X, i, 5)]
        np.testing.assert_allclose(sims[i], [s for _, s in pj.cosine_neighbors(X, i, 5)], atol=1e-12)


def test_cosine_zero_row_and_bounds():
    X = np.array([[1.0, 0], [0, 0], [0.5, 0.5]])
    got = dict(pj.cosine_neighbors(X, 1, k=5))
    assert got == {0: 0.0, 2: 0.0}
    with pytest.raises(IndexError, match="outside"):
        pj.cosine_neighbors(X, 3)


@pytest.mark.parametrize("ch,cls", [("a", pj.VOWEL), ("é", pj.VOWEL), ("b", pj.CONSONANT), ("y", pj.CONSONANT),
                                    ("Q", pj.UPPER), ("É", pj.UPPER), ("7", pj.DIGIT), ("?", pj.PUNCT),
                                    ("$", pj.PUNCT), (" ", pj.SPACE), ("\n", pj.SPACE), ("中", pj.OTHER),
                                    ("\x00", pj.OTHER)])
def test_char_class(ch, cls):
    assert pj.char_class(ch) == cls


def test_table_key_and_cache():
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    k1 = pj.table_key("m", 0, "tok", X)
    assert k1 == pj.table_key("m", 0, "tok", X.copy())
    Y = X.copy()
    Y[0, 0] += 1
    assert k1 != pj.table_key("m", 0, "tok", Y)
    assert k1 != pj.table_key("m", 1, "tok", X)
    cache = pj.ProjectionCache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache
    r1 = pj.cached_pca(k1, X, cache)
    assert pj.cached_pca(k1, X, cache) is r1


def test_tsne_validation_messages():
    X = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match=r"below the number of points \(10\)"):
        pj.tsne(X, perplexity=10)
    with pytest.raises(ValueError, match="at least 250"):
        pj.tsne(X, perplexity=3, max_iter=100)
    with pytest.raises(ValueError, match="at least 4 rows"):
        pj.tsne(X[:3], perplexity=1)


def test_tsne_worker_one_job_at_a_time_cancel_then_same_result():
    events: list[pj.TsneEvent] = []
    ended = threading.Event()
    sent = threading.Event()

    def on(ev):
        events.append(ev)
        if ev.kind == "progress" and ev.message.startswith("t-SNE of"):
            sent.set()  # the job is now inside the child process
        if ev.kind != "progress":
            ended.set()

    w = pj.TsneWorker(on, n_threads=1)
    try:
        big = np.random.default_rng(1).normal(size=(3000, 16))
        job = w.submit(big, perplexity=30, max_iter=1000)
        assert job == 1 and w.busy
        assert w.submit(big, perplexity=30, max_iter=1000) is None  # no second job
        assert w.submit(big[:100], perplexity=5, max_iter=250) is None
        assert w.jobs_started == 1
        assert sent.wait(60), "the job never reached the worker"
        proc = w._proc
        assert w.cancel()
        assert ended.wait(10) and w.wait(10)
        assert events[-1].kind == "cancelled" and events[-1].job == 1
        assert proc.poll() is not None  # the child really stopped
        assert not w.busy and not w.cancel()

        ended.clear()
        small = np.random.default_rng(2).normal(size=(40, 8))
        job2 = w.submit(small, perplexity=8, max_iter=300, seed=0)
        assert job2 == 2
        assert ended.wait(60)
        done = events[-1]
        assert done.kind == "done", done.message
        iters = [e.iteration for e in events if e.job == 2 and e.kind == "progress" and e.iteration > 0]
        assert iters and iters == sorted(iters)  # progress counted up
        np.testing.assert_allclose(done.result, pj.tsne(small, 8, 300, 0, n_threads=1), atol=1e-4)
        # an impossible request is refused up front, and nothing starts
        with pytest.raises(ValueError, match="perplexity"):
            w.submit(small, perplexity=50)
        assert w.jobs_started == 2
    finally:
        w.close()


def test_neighbors_of_a_big_table_match_a_full_sort():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 8))
    X[10] = X[3] * 2.0  # an exact tie in direction with row 3
    idx = pj.CosineIndex(X)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for i in (0, 3, 599):
        s = U @ U[i]
        s[i] = -np.inf
        want = np.lexsort((np.arange(600), -s))[:5]
        got = idx.neighbors(i, 5)
        assert [j for j, _ in got] == want.tolist()
        np.testing.assert_allclose([v for _, v in got], s[want], atol=1e-12)
    assert idx.neighbors(3, 1)[0][0] == 10
