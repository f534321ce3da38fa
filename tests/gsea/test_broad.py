"""--mode broad: GSEA 4.x sampling stream and float32 KS scoring, against literal ports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exprlmm.gsea import GseaSettings, prerank
from exprlmm.gsea.broad import broad_es, java_string_hash, sample_broad
from exprlmm.gsea.javarandom import JavaRandom


def _literal_sample(r: JavaRandom, n: int, k: int) -> list[int]:
    """XMath.randomlySampleWithoutReplacement."""
    if k == n:
        return list(range(n))
    seen: list[int] = []
    while len(seen) < k:
        v = r.next_int(n)
        if v not in seen:
            seen.append(v)
    return seen


@pytest.mark.parametrize("n,k", [(50, 7), (64, 30), (1000, 400), (30, 30)])
def test_sampling_stream_matches_literal(n: int, k: int) -> None:
    a, b = JavaRandom(149), JavaRandom(149)
    fast = sample_broad(a, n, k, 60)
    ref = np.array([_literal_sample(b, n, k) for _ in range(60)])
    assert np.array_equal(fast, ref)
    assert a.state == b.state


def _literal_kscore(members: list[int], scores32: np.ndarray, n: int) -> tuple[np.float32, int]:
    """KSCore + GeneSetScoringTables.Weighted, step by step."""
    k = len(members)
    total = np.float32(0)
    for m in members:
        s = scores32[m]
        total = np.float32(total + (np.abs(s) if np.isfinite(s) else np.float32(0.01)))
    miss = float(np.float32(1.0) / (np.float32(n) - np.float32(k)))
    hits = set(members)
    es = np.float32(0)
    rank = 0
    run = 0.0
    last = -1
    for r in range(n):
        if r != n - 1 and r not in hits:
            continue
        gap = r - last - 1
        if gap > 0:
            run -= gap * miss
            if abs(float(es)) < abs(run):
                es, rank = np.float32(run), r - 1
        if r == n - 1 and r not in hits:
            run -= miss
        else:
            last = r
            run += float(np.float32(np.abs(scores32[r]) / total))
        if abs(float(es)) < abs(run):
            es, rank = np.float32(run), r
    return es, rank


def test_broad_es_matches_literal_kscore() -> None:
    rng = np.random.default_rng(0)
    n = 200
    scores32 = np.sort(rng.normal(size=n).astype(np.float32))[::-1]
    abs32 = np.abs(scores32)
    sq32 = scores32 * scores32
    for k in (1, 5, 20, 199):
        for _ in range(20):
            members = rng.choice(n, size=k, replace=False)
            es, rank = broad_es(members[None, :], abs32, sq32, n, 1.0)
            es_ref, rank_ref = _literal_kscore(members.tolist(), scores32, n)
            assert es[0] == es_ref
            assert rank[0] == rank_ref
    # last gene a member; set at the very top
    es, rank = broad_es(np.arange(10)[None, :], abs32, sq32, n, 1.0)
    assert (es[0], rank[0]) == _literal_kscore(list(range(10)), scores32, n)
    es, rank = broad_es(np.arange(190, 200)[None, :], abs32, sq32, n, 1.0)
    assert (es[0], rank[0]) == _literal_kscore(list(range(190, 200)), scores32, n)


def test_java_string_hash() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -2147483648  # a known MIN_VALUE hash


def test_broad_mode_runs_and_is_deterministic() -> None:
    rng = np.random.default_rng(4)
    genes = [f"g{i}" for i in range(300)]
    scores = pd.Series(rng.normal(size=300), index=genes)
    sets = {f"S{j}": list(rng.choice(genes, size=20 + j, replace=False)) for j in range(5)}
    st = GseaSettings(permutations=200, seed=149, mode="broad", tail="none")
    a = prerank(scores, sets, st).table
    b = prerank(scores, sets, st).table
    pd.testing.assert_frame_equal(a, b)
    fast = prerank(scores, sets, GseaSettings(permutations=200, seed=149, tail="none")).table
    es_broad = a.set_index("term")["es"].sort_index()
    es_fast = fast.set_index("term")["es"].sort_index()
    assert np.allclose(es_broad, es_fast, atol=1e-6)
