"""Fast-mode null on the torch backend (CPU torch here; CUDA when present) vs the numpy null.

The torch null is a different random stream from numpy's, so end-to-end statistics are
compared within permutation noise; the ES kernel is compared exactly (float32 rounding)
with the float64 reference `enrichment_scores` on the same random sets; the prefix draws are
tested for uniformity and for giving each size the same null distribution as independent
draws per size.
"""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from exprlmm.cli import cli
from exprlmm.errors import UserInputError
from exprlmm.gsea import GseaSettings, prerank
from exprlmm.gsea.enrichment import enrichment_scores
from exprlmm.gsea.null import CHUNK, sample_sorted_subsets


def _torch():
    return pytest.importorskip("torch")


def _device() -> str:
    torch = _torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


def _data(
    n_genes: int = 2000, n_sets: int = 40, seed: int = 3
) -> tuple[pd.Series, dict[str, list[str]]]:
    """t₄ scores; sets of size 15–200, every fifth one half from the top or bottom 300."""
    rng = np.random.default_rng(seed)
    genes = np.array([f"G{i}" for i in range(n_genes)])
    scores = pd.Series(rng.standard_t(4, size=n_genes), index=genes)
    order = scores.sort_values(ascending=False).index.to_numpy()
    sets = {}
    for j in range(n_sets):
        k = int(rng.integers(15, 200))
        if j % 5 == 0:
            pool = order[:300] if j % 10 == 0 else order[-300:]
            members = [*rng.choice(pool, k // 2, replace=False), *rng.choice(genes, k, False)]
            sets[f"S{j}"] = list(dict.fromkeys(members))[:k]
        else:
            sets[f"S{j}"] = list(rng.choice(genes, size=k, replace=False))
    return scores, sets


def _settings(**kw) -> GseaSettings:
    base = {"permutations": 2000, "seed": 5, "tail": "none"}
    return GseaSettings(**{**base, **kw})


def _compare(scores: pd.Series, sets: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    a = prerank(scores, sets, _settings()).table.set_index("term")
    b = prerank(scores, sets, _settings(backend="torch", device=_device())).table
    return a, b.set_index("term").loc[a.index]


def _assert_within_noise(a: pd.DataFrame, b: pd.DataFrame) -> None:
    # observed ES: same host code on both backends
    assert np.max(np.abs(a["es"] - b["es"])) <= 1e-12
    ok = a["nes"].notna() & b["nes"].notna()
    assert ok.sum() >= 0.9 * len(a)
    assert stats.spearmanr(a.loc[ok, "nes"], b.loc[ok, "nes"])[0] >= 0.99
    # NES = ES / mean of ~1,000 same-signed null ES with coefficient of variation ≤ 0.4:
    # relative SE of a difference of two independent means ≤ 0.4·√(2/1000) ≈ 1.8 %; allow 5 SE
    rel = np.abs(a.loc[ok, "nes"] - b.loc[ok, "nes"]) / np.abs(a.loc[ok, "nes"])
    assert rel.max() <= 0.09
    # nominal p: two independent binomial estimates from ~1,000 same-signed null draws
    p = (a["pvalue"] + b["pvalue"]) / 2
    bound = 5 * np.sqrt(2 * p * (1 - p) / 900) + 3 / 900
    assert (np.abs(a["pvalue"] - b["pvalue"]) <= bound).all()


# ---- settings and errors (no torch needed) -------------------------------------------


def test_broad_mode_is_numpy_only() -> None:
    with pytest.raises(UserInputError, match="--mode broad runs on numpy only"):
        GseaSettings(mode="broad", backend="torch")


def test_cupy_not_supported_for_gsea() -> None:
    with pytest.raises(UserInputError, match="not supported for gsea yet"):
        GseaSettings(backend="cupy")


def test_device_needs_torch_backend() -> None:
    with pytest.raises(UserInputError, match="--device applies to --backend torch only"):
        GseaSettings(device="cuda")


def _hide_torch(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("no torch here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)


def test_missing_torch_is_a_user_error_naming_the_extra(monkeypatch) -> None:
    scores, sets = _data(n_genes=300, n_sets=5)
    _hide_torch(monkeypatch)
    with pytest.raises(UserInputError, match=r"exprlmm\[gpu\]"):
        prerank(scores, sets, _settings(permutations=100, backend="torch"))


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    scores, sets = _data(n_genes=400, n_sets=6)
    rnk = tmp_path / "r.rnk"
    rnk.write_text("".join(f"{g}\t{v:.6f}\n" for g, v in scores.items()))
    gmt = tmp_path / "s.gmt"
    gmt.write_text("".join(f"{k}\tdesc\t" + "\t".join(v) + "\n" for k, v in sets.items()))
    return rnk, gmt


def _gsea_cli(tmp_path: Path, *extra: str):
    rnk, gmt = _write_inputs(tmp_path)
    out = tmp_path / "g.tsv"
    args = ["gsea", "--rnk", str(rnk), "--gmt", str(gmt), "--permutations", "300"]
    result = CliRunner().invoke(cli, [*args, "--tail", "none", *extra, "-o", str(out)])
    return result, out


def test_cli_missing_torch_exit_2_nothing_written(tmp_path: Path, monkeypatch) -> None:
    _hide_torch(monkeypatch)
    result, out = _gsea_cli(tmp_path, "--backend", "torch")
    assert result.exit_code == 2
    assert "exprlmm[gpu]" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "extra,msg",
    [
        (["--backend", "torch", "--mode", "broad"], "--mode broad runs on numpy only"),
        (["--backend", "cupy"], "not supported for gsea yet"),
    ],
)
def test_cli_unsupported_backend_exit_2(tmp_path: Path, extra: list[str], msg: str) -> None:
    result, out = _gsea_cli(tmp_path, *extra)
    assert result.exit_code == 2
    assert msg in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_no_cuda_is_a_user_error_not_a_cpu_fallback() -> None:
    torch = _torch()
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    scores, sets = _data(n_genes=300, n_sets=5)
    with pytest.raises(UserInputError, match="no CUDA GPU"):
        prerank(scores, sets, _settings(permutations=100, backend="torch"))


# ---- the torch null ---------------------------------------------------------------------


def test_kernel_matches_float64_reference_on_the_same_sets() -> None:
    torch = _torch()
    from exprlmm.gsea.null_torch import prefix_null_es

    rng = np.random.default_rng(0)
    n = 300
    seq = np.stack([rng.permutation(n)[:60] for _ in range(80)])
    sizes = np.array([1, 5, 17, 40, 59, 60])
    pos, arrival = torch.sort(torch.as_tensor(seq), dim=1)
    for w, exact_sign in [(np.abs(rng.standard_t(4, size=n)), True), (np.zeros(n), False)]:
        got = prefix_null_es(
            pos, arrival, torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(sizes), n
        ).numpy()
        for i, k in enumerate(sizes):
            ref = enrichment_scores(np.sort(seq[:, :k], axis=1), w, n).es
            if exact_sign:
                np.testing.assert_allclose(got[i], ref, atol=1e-6)
            else:  # all-zero weights: equal-weight (classic) ES; |peak| = |trough| ties
                # may resolve either way in float32, as in the numpy fast null
                np.testing.assert_allclose(np.abs(got[i]), np.abs(ref), atol=1e-6)


def test_set_of_the_whole_list_has_es_one() -> None:
    torch = _torch()
    from exprlmm.gsea.null_torch import prefix_null_es

    seq = torch.stack([torch.randperm(20) for _ in range(4)])
    pos, arrival = torch.sort(seq, dim=1)
    es = prefix_null_es(pos, arrival, torch.rand(20) + 0.1, torch.tensor([20]), 20)
    np.testing.assert_allclose(es.numpy(), 1.0, atol=1e-6)


def test_prefix_draws_are_uniform() -> None:
    torch = _torch()
    from exprlmm.gsea.null_torch import draw_prefixes

    n, k, m = 50, 10, 4000
    seq = draw_prefixes(n, k, seed=7, block=0, m=m, device=_device()).cpu().numpy()
    assert seq.shape == (m, k) and seq.dtype == np.int64
    assert all(np.unique(r).size == k for r in seq)
    counts = np.bincount(seq.ravel(), minlength=n)  # each gene: Binomial(m, k/n)
    assert stats.chisquare(counts).pvalue > 1e-3
    first = np.bincount(seq[:, 0], minlength=n)  # the first draw alone is uniform too
    assert stats.chisquare(first).pvalue > 1e-3
    other = draw_prefixes(n, k, seed=7, block=1, m=m, device=_device()).cpu().numpy()
    assert not np.array_equal(seq, other)
    assert torch.equal(
        torch.as_tensor(seq), draw_prefixes(n, k, seed=7, block=0, m=m, device=_device()).cpu()
    )


def test_prefix_null_has_the_distribution_of_independent_draws_per_size() -> None:
    torch = _torch()
    from exprlmm.gsea.null_torch import null_es_torch

    rng = np.random.default_rng(11)
    n = 1000
    w = np.abs(rng.standard_t(4, size=n))
    sizes = np.array([15, 60, 200])
    m = 4000
    null = np.hstack(
        list(
            null_es_torch(
                torch.as_tensor(w, device=_device()),
                sizes,
                seed=3,
                n_perm=m,
                budget_bytes=64 * 2**20,
            )
        )
    )
    assert null.shape == (3, m) and null.dtype == np.float32
    for row, k in enumerate(sizes):
        independent = enrichment_scores(sample_sorted_subsets(rng, n, int(k), m), w, n).es
        assert stats.ks_2samp(null[row], independent).pvalue > 1e-3


def test_null_does_not_depend_on_the_memory_budget() -> None:
    torch = _torch()
    from exprlmm.gsea.null_torch import null_es_torch

    w = torch.as_tensor(np.abs(np.random.default_rng(2).normal(size=500)), device=_device())
    sizes = np.array([15, 16, 30, 90, 91, 200])

    def run(budget: float) -> list[np.ndarray]:
        return list(null_es_torch(w, sizes, seed=9, n_perm=2500, budget_bytes=budget))

    small, large = run(1e6), run(1e9)
    assert [c.shape for c in small] == [(6, CHUNK), (6, CHUNK), (6, 500)]
    for a, b in zip(small, large, strict=True):
        np.testing.assert_array_equal(a, b)


# ---- end to end: same statistics as the numpy backend ------------------------------------


def test_torch_matches_numpy_within_permutation_noise() -> None:
    _torch()
    a, b = _compare(*_data())
    _assert_within_noise(a, b)


def test_ties_within_permutation_noise() -> None:
    _torch()
    scores, sets = _data(seed=4)
    scores = scores.round(0)  # a handful of distinct values: long runs of ties
    a, b = _compare(scores, sets)
    _assert_within_noise(a, b)


def test_all_zero_scores() -> None:
    _torch()
    scores, sets = _data(seed=5)
    scores[:] = 0.0
    a, b = _compare(scores, sets)
    assert np.max(np.abs(a["es"] - b["es"])) <= 1e-12
    assert np.isfinite(b["nes"]).all() and b["pvalue"].between(0, 1).all()
    _assert_within_noise(a, b)


def test_torch_is_deterministic_for_a_seed() -> None:
    _torch()
    scores, sets = _data(n_genes=600, n_sets=10)
    st = _settings(permutations=1500, backend="torch", device=_device())
    first = prerank(scores, sets, st).table
    pd.testing.assert_frame_equal(first, prerank(scores, sets, st).table)
    other = prerank(
        scores, sets, _settings(permutations=1500, seed=6, backend="torch", device=_device())
    ).table
    assert not np.array_equal(
        first["nes"].to_numpy(), other.set_index("term").loc[first["term"], "nes"].to_numpy()
    )


def test_regenerated_chunks_give_the_same_result() -> None:
    _torch()
    scores, sets = _data(n_genes=600, n_sets=10)
    kw = {"permutations": 1500, "backend": "torch", "device": _device()}
    cached = prerank(scores, sets, _settings(**kw)).table
    regenerated = prerank(scores, sets, _settings(**kw, memory_limit_mb=1e-3)).table
    pd.testing.assert_frame_equal(cached, regenerated)


def test_cli_torch_cpu_runs_and_records_the_backend(tmp_path: Path) -> None:
    _torch()
    result, out = _gsea_cli(tmp_path, "--backend", "torch", "--device", "cpu")
    assert result.exit_code == 0, result.output
    import json

    rec = json.loads((tmp_path / "g.tsv.run.json").read_text())
    assert rec["settings"]["backend"] == "torch" and rec["settings"]["device"] == "cpu"
    assert len(pd.read_csv(out, sep="\t")) == 6
