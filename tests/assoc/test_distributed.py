"""The scans on a dask LocalCluster give the single-process numbers; chunks are atomic.

Reference values are the single-process numpy scans (themselves checked against dense
closed forms in test_lmm.py / test_slr.py); the cluster must reproduce them to 1e-8 in
−log10 p at float64, with chunk boundaries different from the single-process blocks.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("distributed")

from exprlmm.assoc import distributed as dist
from exprlmm.assoc import lmm_scan, slr_scan
from exprlmm.assoc.distributed import (
    map_tasks,
    open_client,
    scan_distributed,
    scan_traits,
)
from exprlmm.errors import UserInputError
from exprlmm.kinship import eigensystem_from_expression, standardize
from exprlmm.kinship.kinship import randomized_svd

RNG = np.random.default_rng(11)
N, G = 50, 120
LATENT = RNG.normal(size=(N, 3))
EXPR = LATENT @ RNG.normal(size=(3, G)) + RNG.normal(size=(N, G))
TRAIT = LATENT[:, 0] + RNG.normal(size=N)
COV = RNG.normal(size=(N, 1))


@pytest.fixture(scope="module")
def client():
    with open_client(workers=2, processes=False) as c:
        yield c


def _max_diff(a, b):
    return float(np.max(np.abs(np.log10(a.pvalue) - np.log10(b.pvalue))))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"delta": "refit"}, {"delta": 0.6, "leave_out": "gene"}, {"method": "ml", "test": "lrt"}],
    ids=["null", "refit", "fixed-leave-out", "ml-lrt"],
)
def test_cluster_matches_single_process(client, kwargs):
    single = lmm_scan(EXPR, TRAIT, covariates=COV, **kwargs)
    tables = scan_distributed(
        EXPR, TRAIT, client=client, models=("slr", "lmm"), covariates=COV, chunk_size=23, **kwargs
    )
    assert tables["lmm"].attrs["chunks"]["n_chunks"] == 6
    assert _max_diff(single, tables["lmm"]) <= 1e-8
    assert np.allclose(single.padj, tables["lmm"].padj, rtol=1e-8)
    assert list(single.gene) == list(tables["lmm"].gene)
    assert _max_diff(slr_scan(EXPR, TRAIT, covariates=COV), tables["slr"]) <= 1e-8


def test_chunks_are_written_atomically_and_reused(client, tmp_path, monkeypatch):
    folder = tmp_path / "chunks"
    real = dist._chunk_task

    def failing(plans, block, in_kinship):
        if block.shape[1] == 20:  # the last of the chunks 0-25, …, 75-100, 100-120
            raise RuntimeError("worker lost")
        return real(plans, block, in_kinship)

    monkeypatch.setattr(dist, "_chunk_task", failing)
    with pytest.raises(RuntimeError, match="worker lost"):
        scan_distributed(EXPR, TRAIT, client=client, chunk_size=25, chunk_dir=folder)
    written = sorted(p.name for p in folder.iterdir())
    assert "chunk-0000000100-0000000120.npz" not in written
    assert all(name.startswith("chunk-") and name.endswith(".npz") for name in written)
    monkeypatch.setattr(dist, "_chunk_task", real)
    tables = scan_distributed(EXPR, TRAIT, client=client, chunk_size=25, chunk_dir=folder)
    assert tables["lmm"].attrs["chunks"]["reused"] == len(written)
    assert _max_diff(lmm_scan(EXPR, TRAIT), tables["lmm"]) <= 1e-8


def test_scan_traits_and_map_tasks(client):
    traits = {"a": TRAIT, "b": LATENT[:, 1] + RNG.normal(size=N)}
    eig = eigensystem_from_expression(EXPR)
    got = scan_traits(EXPR, traits, client, covariates=COV, eigensystem=eig, delta="refit")
    assert list(got) == ["a", "b"]
    for name, trait in traits.items():
        want = lmm_scan(EXPR, trait, covariates=COV, eigensystem=eig, delta="refit")
        assert _max_diff(want, got[name]) <= 1e-8
    assert map_tasks(pow, [1, 2, 3], client, shared={"exp": 2}) == [1, 4, 9]


def test_unreachable_scheduler_is_a_user_error_within_the_timeout():
    started = time.perf_counter()
    with pytest.raises(UserInputError, match="no dask scheduler answered") as err:
        with open_client(scheduler="tcp://127.0.0.1:9", timeout=1.0):
            pass
    assert "\n" not in str(err.value)
    assert time.perf_counter() - started < 15


@pytest.mark.parametrize("delta", ["null", "refit"])
def test_float32_stays_close_to_float64(delta):
    # documented bound at N=1,090, G=20,000 is in benchmarks/README.md; here a small cohort
    a = lmm_scan(EXPR, TRAIT, covariates=COV, delta=delta)
    b = lmm_scan(EXPR, TRAIT, covariates=COV, delta=delta, precision="float32")
    assert 0 < _max_diff(a, b) < 1e-3
    assert np.array_equal(
        np.argsort(a.pvalue.to_numpy())[:10], np.argsort(b.pvalue.to_numpy())[:10]
    )


@pytest.mark.parametrize("engine", ["numpy", "dask"])
def test_randomized_svd_at_full_rank_is_the_exact_svd(engine):
    z = standardize(EXPR)
    u, s = randomized_svd(z, N, engine=engine, seed=3)
    exact_u, exact_s, _ = np.linalg.svd(z, full_matrices=False)
    assert np.allclose(s, exact_s, rtol=1e-10)
    # same subspaces: |cos| of matching singular vectors is 1 (signs are arbitrary)
    assert np.allclose(np.abs(np.sum(u * exact_u, axis=0)), 1.0, atol=1e-8)


def test_full_rank_randomized_kinship_gives_the_exact_scan():
    exact = lmm_scan(EXPR, TRAIT, eigensystem=eigensystem_from_expression(EXPR), delta=0.9)
    eig = eigensystem_from_expression(EXPR, rank=N)
    assert not eig.is_low_rank
    approx = lmm_scan(EXPR, TRAIT, eigensystem=eig, delta=0.9)
    assert _max_diff(exact, approx) <= 1e-8


def test_low_rank_randomized_kinship_captures_the_leading_spectrum():
    # three latent factors: K's top eigenvalues are found closely by a rank-10 sketch
    exact = eigensystem_from_expression(EXPR)
    eig = eigensystem_from_expression(EXPR, rank=10)
    assert eig.is_low_rank and eig.rank == 10
    top = np.sort(np.asarray(exact.values))[::-1][:3]
    assert np.allclose(np.sort(eig.values)[::-1][:3], top, rtol=1e-3)


# tearing down worker processes under pytest leaves sockets for the garbage collector
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_local_worker_processes_keep_glibc_malloc_defaults() -> None:
    # dask's MALLOC_TRIM_THRESHOLD_ turns off glibc's dynamic mmap threshold (numpy
    # temporaries then fault in afresh: GSEA ran 3x slower in a worker); open_client drops it
    import os

    with open_client(workers=1) as client:
        env = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        threads = client.run(lambda: os.environ.get("OPENBLAS_NUM_THREADS"))
    assert list(env.values()) == [None]
    assert list(threads.values()) == ["1"]  # dask's other worker settings are kept


def test_local_clusters_do_not_need_dask_port_8787() -> None:
    # another cluster (or anything) on 8787 must not make ours warn or fail
    import socket

    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", 8787))
        except OSError:
            pass  # already taken by something else: the same situation
        taken.listen()
        with open_client(workers=1, processes=False) as client:
            assert map_tasks(abs, [-2, 3], client) == [2, 3]


@pytest.mark.parametrize("kwargs", [{}, {"delta": "refit"}], ids=["null", "refit"])
def test_several_traits_share_each_chunk(client, tmp_path, kwargs):
    traits = {"a": TRAIT, "b": LATENT[:, 1] + RNG.normal(size=N)}
    folder = tmp_path / "chunks"
    options = {"models": ("slr", "lmm"), "covariates": COV, "chunk_size": 31, **kwargs}
    tables = dist.scan_distributed_traits(EXPR, traits, client=client, chunk_dir=folder, **options)
    assert list(tables) == ["a", "b"]
    assert len(list(folder.glob("chunk-*.npz"))) == 4  # one file per chunk for both traits
    for name, trait in traits.items():
        single = lmm_scan(EXPR, trait, covariates=COV, **kwargs)
        assert _max_diff(single, tables[name]["lmm"]) <= 1e-8
        slr = slr_scan(EXPR, trait, covariates=COV)
        assert _max_diff(slr, tables[name]["slr"]) <= 1e-10
    # a rerun reads every chunk back: same tables
    again = dist.scan_distributed_traits(EXPR, traits, client=client, chunk_dir=folder, **options)
    assert again["b"]["lmm"].attrs["chunks"]["reused"] == 4
    assert np.array_equal(again["b"]["lmm"].pvalue, tables["b"]["lmm"].pvalue)
