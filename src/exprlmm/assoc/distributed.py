r"""The association scans on a dask.distributed cluster: gene chunks and traits as tasks.

The maths is the single-process code's (:mod:`exprlmm.assoc.lmm`, :mod:`exprlmm.assoc.slr`):
the client fits the null model and rotates the design once (:func:`~exprlmm.assoc.lmm.prepare_lmm`),
broadcasts that plan to every worker, and submits one task per block of genes
(:func:`~exprlmm.assoc.lmm.lmm_block`: standardise, whiten or rotate, statistics and p-value
tails). The blocks are independent, so the table assembled in gene order, with
Benjamini–Hochberg over all genes (:func:`~exprlmm.assoc.lmm.lmm_table`), is the single-process
table.

Fault tolerance: each block travels inside its task (not scattered), so a lost worker's
blocks are recomputed elsewhere by the scheduler; finished blocks are written at once, each
atomically, to ``chunk_dir``, and blocks already there are not recomputed (resume after a
crash of the client). At most ``2 × workers + 2`` blocks are in flight, so neither the
scheduler nor the workers hold the whole matrix.

Independent scans (several traits against one expression matrix, subsamples, cohorts) run
as separate tasks with :func:`map_tasks` / :func:`scan_traits`.

dask is an optional dependency (``pip install 'exprlmm[dask]'``).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from exprlmm._xp import to_numpy
from exprlmm.assoc._common import as_matrix, default_chunk_size, fixed_design
from exprlmm.assoc.lmm import (
    check_lmm_options,
    default_eigensystem,
    kinship_genes_mask,
    lmm_block_traits,
    lmm_chunk_size,
    lmm_scan,
    lmm_table,
    plan_lmm_traits,
    trait_items,
)
from exprlmm.assoc.slr import prepare_slr, slr_block, slr_table
from exprlmm.errors import UserInputError
from exprlmm.io.atomic import atomic_path
from exprlmm.kinship.kinship import Eigensystem

__all__ = [
    "map_tasks",
    "open_client",
    "scan_distributed",
    "scan_distributed_traits",
    "scan_traits",
]

MODELS = ("slr", "lmm")
_CHUNK_FILE = re.compile(r"^chunk-(\d+)-(\d+)\.npz$")


def _require_dask():
    try:
        import distributed
    except ImportError:
        raise UserInputError(
            "--workers/--scheduler need dask.distributed; install it with "
            "`pip install 'exprlmm[dask]'`"
        ) from None
    return distributed


@contextlib.contextmanager
def open_client(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    timeout: float = 10.0,
    processes: bool = True,
) -> Iterator[Any]:
    """A ``distributed.Client``: a new local cluster of ``workers`` or an existing ``scheduler``.

    The local cluster runs ``workers`` processes (threads with ``processes=False``) of one
    thread each, BLAS at one thread, no dashboard, glibc's default malloc settings (dask's
    ``MALLOC_TRIM_THRESHOLD_`` is left out: it made numpy temporaries fault in again, 3×
    slower); its workers import exprlmm's scan, GSEA and study modules before the client is
    returned. Cluster and client are closed on exit. For a cluster of your own
    (``scheduler``), start its workers without that variable for the same speed.

    Raises
    ------
    exprlmm.errors.UserInputError
        dask.distributed is not installed, both or neither of ``workers``/``scheduler`` are
        given, ``workers < 1``, or no scheduler answers at ``scheduler`` within ``timeout``
        seconds.
    """
    distributed = _require_dask()
    if (workers is None) == (scheduler is None):
        raise UserInputError("give either --workers N (a local cluster) or --scheduler ADDRESS")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserInputError(
                f"--scheduler {scheduler}: no dask scheduler answered within {timeout:g} s "
                f"({reason[:120]}); check the address, or use --workers N for a local cluster"
            ) from None
        with client:
            yield client
        return
    if workers < 1:
        raise UserInputError(f"--workers {workers}: must be at least 1")
    import dask

    # dask starts worker processes with MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back to
    # the OS). Setting it turns off glibc's dynamic mmap threshold, so every large numpy
    # temporary is a fresh mmap whose pages fault in again: the GSEA null ran 3× slower in a
    # worker than in this process. Our tasks allocate bounded chunks; keep glibc's default.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # the cluster's own INFO lines (and tracebacks of comms closed at shutdown) are not ours
    # to show: errors only, while it runs and while it shuts down
    dask_log = logging.getLogger("distributed")
    level = dask_log.level
    dask_log.setLevel(logging.ERROR)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                # no dashboard, but the scheduler still serves /health etc.: on a free local
                # port, not dask's 8787 (taken by any other cluster on this machine)
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            )
            try:
                with distributed.Client(cluster, set_as_default=False) as client:
                    client.run(_warm_up)
                    yield client
            finally:
                cluster.close()
    finally:
        dask_log.setLevel(level)


def _warm_up() -> None:
    """Import the modules tasks use (1–2 s per fresh worker), as part of the start-up."""
    import exprlmm.assoc.lmm
    import exprlmm.gsea.engine
    import exprlmm.study.runner  # noqa: F401


def _chunk_task(plans: dict, block: np.ndarray, in_kinship: np.ndarray) -> dict[str, np.ndarray]:
    """One gene block through every model's plan for every trait (runs on a worker).

    ``plans[model]`` lists one plan per trait; with several LMM plans the block is
    standardised and rotated once for all of them (`rotate_genes`). Keys: ``model.i.field``.
    """
    out = {}
    for i, plan in enumerate(plans.get("slr", [])):
        out.update({f"slr.{i}.{k}": v for k, v in slr_block(plan, block).items()})
    if plans.get("lmm"):
        for i, result in enumerate(lmm_block_traits(plans["lmm"], block, in_kinship)):
            out.update({f"lmm.{i}.{k}": v for k, v in result.items()})
    return out


def _chunk_path(chunk_dir: Path, start: int, stop: int) -> Path:
    return chunk_dir / f"chunk-{start:010d}-{stop:010d}.npz"


def _write_chunk(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _read_chunk(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _n_workers(client) -> int:
    return max(len(client.scheduler_info(n_workers=-1).get("workers", {})), 1)


def scan_distributed(expression, trait, *, client, **options) -> dict[str, pd.DataFrame]:
    """Run :func:`~exprlmm.assoc.slr_scan` and/or :func:`~exprlmm.assoc.lmm_scan` on a cluster.

    One trait: :func:`scan_distributed_traits` with ``{"trait": trait}`` (same options);
    returns ``{"slr": table, "lmm": table}`` for the models run.
    """
    return scan_distributed_traits(expression, {"trait": trait}, client=client, **options)["trait"]


def scan_distributed_traits(
    expression,
    traits: Mapping[str, Any],
    *,
    client,
    models: Sequence[str] = ("lmm",),
    covariates=None,
    eigensystem: Eigensystem | None = None,
    kinship_genes=None,
    gene_names=None,
    standardize: bool = True,
    chunk_size: int | None = None,
    chunk_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    method: str = "reml",
    delta="null",
    leave_out: str = "none",
    test: str = "wald",
    log_delta_bounds: tuple[float, float] = (-10.0, 10.0),
    n_nodes: int = 96,
    precision: str = "float64",
) -> dict[str, dict[str, pd.DataFrame]]:
    """SLR and/or LMM scans of one or more traits on a cluster, one task per gene block.

    Each block travels once and runs every model for every trait; with several traits the
    LMM standardises and rotates it once for all of them (as
    :func:`~exprlmm.assoc.lmm_scan_traits`).

    Parameters
    ----------
    expression, covariates, eigensystem, kinship_genes, gene_names, standardize
        As for :func:`~exprlmm.assoc.lmm_scan` (numpy data; the kinship, when not given, is
        built on the client, once).
    traits
        Mapping of name → ``(N,)`` trait.
    client
        A ``distributed.Client`` (see :func:`open_client`).
    models
        Which scans: ``("slr",)``, ``("lmm",)`` or both; one task per block runs them all.
    chunk_size
        Genes per task (default: the single-process block size, or smaller so that each
        worker gets at least 4 blocks).
    chunk_dir
        Folder for the finished blocks (``chunk-<start>-<stop>.npz``, each written
        atomically). Blocks already there are read, not recomputed: the caller must give a
        folder that belongs to these inputs and options. None: results stay in memory.
    progress
        ``progress(n_genes_done, n_genes)`` after each block.
    method, delta, leave_out, test, log_delta_bounds, n_nodes, precision
        LMM options, as for :func:`~exprlmm.assoc.lmm_scan`.

    Returns
    -------
    dict
        Trait name → ``{"slr": table, "lmm": table}`` for the models run, equal to the
        single-process tables; ``table.attrs["chunks"]`` gives ``n_chunks`` and ``reused``
        (read from ``chunk_dir``).
    """
    models = tuple(models)
    if not models or any(m not in MODELS for m in models):
        raise ValueError(f"models must be a non-empty subset of {MODELS}, got {models!r}")
    check_lmm_options(
        method=method, delta=delta, leave_out=leave_out, test=test, precision=precision
    )
    matrix, names = as_matrix(expression, gene_names)
    matrix = np.asarray(to_numpy(matrix), dtype=np.float64)
    n, g = matrix.shape
    items = trait_items(traits)
    for _, trait in items:
        _, x_np = fixed_design(trait, covariates, n)
    in_kinship = kinship_genes_mask(kinship_genes, g)
    plans: dict[str, list[Any]] = {}
    if "slr" in models:
        plans["slr"] = [
            prepare_slr(trait, covariates=covariates, n_samples=n, standardize=standardize)
            for _, trait in items
        ]
    if "lmm" in models:
        if eigensystem is not None:  # the workers run numpy float64
            eigensystem = Eigensystem(
                np.asarray(to_numpy(eigensystem.values), dtype=np.float64),
                np.asarray(to_numpy(eigensystem.vectors), dtype=np.float64),
                n_genes=eigensystem.n_genes,
                min_eigenvalue=eigensystem.min_eigenvalue,
            )
        lmm_plans, in_kinship = plan_lmm_traits(
            matrix,
            items,
            eigensystem=eigensystem,
            kinship_genes=in_kinship,
            covariates=covariates,
            method=method,
            delta=delta,
            leave_out=leave_out,
            test=test,
            standardize=standardize,
            log_delta_bounds=log_delta_bounds,
            n_nodes=n_nodes,
            precision=precision,
        )
        plans["lmm"] = list(lmm_plans.values())
    if chunk_size is None:  # the single-process block, or smaller: ≥ 4 blocks per worker
        bound = lmm_chunk_size(n, x_np.shape[1]) if "lmm" in models else default_chunk_size(n)
        chunk_size = max(64, min(bound, -(-g // (4 * _n_workers(client)))))
    bounds = [(start, min(start + chunk_size, g)) for start in range(0, g, chunk_size)]
    folder = None if chunk_dir is None else Path(chunk_dir)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, np.ndarray]] = {}
    todo = []
    for start, stop in bounds:
        path = None if folder is None else _chunk_path(folder, start, stop)
        if path is not None and path.is_file():
            results[start] = _read_chunk(path)
        else:
            todo.append((start, stop))
    reused = len(results)
    done = sum(stop - start for start, stop in bounds if start in results)
    if progress is not None and done:
        progress(done, g)
    if todo:
        done = _run_chunks(
            client, plans, matrix, in_kinship, todo, folder, results, progress, g, done
        )
    parts = [results[start] for start, _ in bounds]
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for i, (name, _) in enumerate(items):
        out[name] = {}
        for model in models:
            prefix = f"{model}.{i}."
            model_parts = [
                {k[len(prefix) :]: v for k, v in p.items() if k.startswith(prefix)} for p in parts
            ]
            make = slr_table if model == "slr" else lmm_table
            table = make(plans[model][i], names, model_parts)
            table.attrs["chunks"] = {
                "n_chunks": len(bounds),
                "reused": reused,
                "chunk_size": chunk_size,
            }
            out[name][model] = table
    return out


def _run_chunks(client, plans, matrix, in_kinship, todo, folder, results, progress, g, done):
    """Submit the blocks with a bounded window; write each result as it arrives."""
    import dask
    from distributed import as_completed

    window = 2 * _n_workers(client) + 2
    (plans_future,) = client.scatter([plans], broadcast=True, hash=False)
    pending = list(todo)
    starts = {}

    def submit():
        start, stop = pending.pop(0)
        future = client.submit(
            _chunk_task,
            plans_future,
            np.ascontiguousarray(matrix[:, start:stop]),
            in_kinship[start:stop],
            pure=False,
            key=f"exprlmm-chunk-{start}-{stop}-{id(results):x}",
        )
        starts[future.key] = (start, stop)
        return future

    # each block rides in its task (recomputable if a worker is lost): no large-graph warning
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "64GiB"}):
        running = as_completed(
            [submit() for _ in range(min(window, len(pending)))], loop=client.loop
        )
        try:
            for future in running:
                start, stop = starts.pop(future.key)
                arrays = future.result()
                future.release()
                if folder is not None:
                    _write_chunk(_chunk_path(folder, start, stop), arrays)
                results[start] = arrays
                done += stop - start
                if progress is not None:
                    progress(done, g)
                if pending:
                    running.add(submit())
        except BaseException:
            for future in list(running.futures):
                future.cancel()
            raise
        finally:
            plans_future.release()
    return done


# ---------------------------------------------------------------------------------------
# Independent scans as separate tasks
# ---------------------------------------------------------------------------------------
class _Shared:
    """Inputs common to every task, sent as one pickled object.

    dask's scatter takes lists and DataFrames apart (a list of 5,000 gene names took 0.8 s,
    a 20,000-column DataFrame 11 s); one opaque object is pickled once (numpy buffers out of
    band) in milliseconds.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)


def _call_with_shared(fn: Callable[..., Any], item: Any, shared: _Shared) -> Any:
    return fn(item, **shared.values)


def map_tasks(
    fn: Callable[..., Any],
    items: Iterable[Any],
    client,
    *,
    shared: Mapping[str, Any] | None = None,
) -> list[Any]:
    """``[fn(item, **shared) for item in items]``, each call a separate task on the cluster.

    ``shared`` (large inputs common to every call: the expression matrix, an eigensystem)
    is sent to every worker once, as one object. Results come back in the order of
    ``items``; the first failing task's exception is raised.
    """
    items = list(items)
    (bundle,) = client.scatter([_Shared(shared or {})], broadcast=True, hash=False)
    futures = [client.submit(_call_with_shared, fn, item, bundle, pure=False) for item in items]
    try:
        return client.gather(futures)
    finally:
        for future in [*futures, bundle]:
            future.release()


def _scan_one_trait(item, *, expression, **options):
    name, trait = item
    return name, lmm_scan(expression, trait, **options)


def scan_traits(
    expression,
    traits,
    client,
    *,
    covariates=None,
    eigensystem: Eigensystem | None = None,
    kinship_genes=None,
    gene_names=None,
    **lmm_options,
) -> dict[str, pd.DataFrame]:
    """LMM scans of several traits against one expression matrix, one task per trait.

    The kinship's eigensystem is computed once on the client (unless given) and, with the
    expression matrix, sent to each worker once. Each task is
    ``lmm_scan(expression, trait, eigensystem=…, **lmm_options)``, so every table equals the
    single-process scan of that trait with the same eigensystem.

    Parameters
    ----------
    traits
        A samples × traits DataFrame, or a mapping of name → ``(N,)`` values.
    lmm_options
        Passed to :func:`~exprlmm.assoc.lmm_scan` (``method``, ``delta``, ``precision``…).

    Returns
    -------
    dict
        Trait name → result table, in the order of ``traits``.
    """
    matrix, names = as_matrix(expression, gene_names)
    matrix = np.asarray(to_numpy(matrix), dtype=np.float64)
    g = matrix.shape[1]
    items = [(name, np.asarray(v, dtype=np.float64)) for name, v in trait_items(traits)]
    in_kinship = kinship_genes_mask(kinship_genes, g)
    if eigensystem is None:
        eigensystem, in_kinship = default_eigensystem(
            matrix, in_kinship, precision=lmm_options.get("precision", "float64")
        )
    shared = {
        "expression": matrix,
        "eigensystem": eigensystem,
        "kinship_genes": in_kinship,
        "covariates": covariates,
        "gene_names": names,
        **lmm_options,
    }
    return dict(map_tasks(_scan_one_trait, items, client, shared=shared))
