"""Congruence: exact find equals a numpy brute-force cosine reference on random data."""

from __future__ import annotations

import numpy as np

from stores.registry import StoreRegistry


def brute_force(keys: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k64 = keys.astype(np.float64)
    q64 = query.astype(np.float64)
    sims = (k64 @ q64) / (np.linalg.norm(k64, axis=1) * np.linalg.norm(q64))
    order = np.argsort(-sims, kind="stable")[:k]
    return order, sims[order]


def test_find_matches_brute_force_reference(registry: StoreRegistry) -> None:
    rng = np.random.default_rng(1234)
    keys = (rng.normal(size=(2000, 64)) * rng.uniform(0.1, 10.0, size=(2000, 1))).astype(np.float32)
    store = registry.get("ref")
    for start in range(0, len(keys), 500):
        store.set(keys[start : start + 500].tolist(), [str(i) for i in range(start, start + 500)])
    # delete a slice so the reference must account for removals too
    store.delete(keys[:100].tolist())
    live = keys[100:]
    for query in rng.normal(size=(8, 64)).astype(np.float32):
        order, sims = brute_force(live, query, 10)
        found = store.find(query.tolist(), 10)
        assert [int(v) for v in found.values] == [int(i) + 100 for i in order]
        np.testing.assert_allclose(found.similarities, sims, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(found.keys, dtype=np.float32), live[order])
