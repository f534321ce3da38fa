"""The association pipeline: inputs → cohort → SLR / LMM scans → tidy table + run record.

Thin glue over the pure API (:func:`exprlmm.assoc.slr_scan`, :func:`exprlmm.assoc.lmm_scan`)
and the readers in :mod:`exprlmm.io`; the CLI (:mod:`exprlmm.commands.assoc`) only parses
options into :class:`AssocSettings` and calls :func:`run_assoc` and :func:`write_assoc`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from exprlmm._xp import to_backend, to_numpy
from exprlmm.assoc.lmm import NullModel, lmm_scan, lmm_scan_traits
from exprlmm.assoc.slr import slr_scan
from exprlmm.errors import UserInputError
from exprlmm.io.atomic import write_text_atomic
from exprlmm.io.cohort import Cohort, load_cohort
from exprlmm.io.record import describe_input, run_record_path, write_run_record
from exprlmm.io.samples import read_sample_sheet, to_numeric_or_none
from exprlmm.io.tables import read_gene_list, write_table
from exprlmm.kinship import eigensystem_from_expression

log = logging.getLogger(__name__)

Model = Literal["slr", "lmm", "both"]


@dataclass(frozen=True)
class AssocSettings:
    """Everything that defines an ``exprlmm assoc`` run (written to the run record)."""

    expression: str
    samples: str
    trait: str
    scores: str | None = None
    more_traits: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    model: Model = "both"
    method: Literal["reml", "ml"] = "reml"
    delta: str = "null"  # "null", "refit" or a positive number
    leave_out: Literal["none", "gene"] = "none"
    test: Literal["wald", "lrt"] = "wald"
    kinship_genes: str | None = None
    kinship_exclude: str | None = None
    standardize: bool = True
    sample_column: str | None = None
    orientation: Literal["auto", "genes-rows", "genes-columns"] = "auto"
    gene_column: str | None = None
    barcode_length: int = 15
    log2p1: bool = False
    missing: Literal["drop-gene", "drop-sample", "error"] = "drop-gene"
    duplicates: Literal["first", "mean", "error"] = "first"
    threads: int = 1
    chunk_size: int | None = None
    backend: Literal["numpy", "torch", "cupy"] = "numpy"
    device: str | None = None
    precision: Literal["float64", "float32"] = "float64"
    kinship_rank: int | None = None
    kinship_seed: int = 0
    workers: int | None = None
    worker_processes: bool = True
    scheduler: str | None = None
    scheduler_timeout: float = 10.0

    @property
    def traits(self) -> tuple[str, ...]:
        """Every trait tested: ``trait`` then ``more_traits`` (one K for all of them)."""
        return (self.trait, *self.more_traits)

    @property
    def distributed(self) -> bool:
        """Whether the scan runs on a dask cluster (``workers`` or ``scheduler`` given)."""
        return self.workers is not None or self.scheduler is not None

    def delta_value(self) -> str | float:
        """``delta`` as the scan expects it: 'null', 'refit' or a float."""
        if self.delta in ("null", "refit"):
            return self.delta
        try:
            value = float(self.delta)
        except ValueError:
            raise UserInputError(
                f"--delta {self.delta!r}: use 'null', 'refit' or a positive number"
            ) from None
        if not value > 0:
            raise UserInputError(f"--delta {self.delta!r}: a fixed δ must be positive")
        return value


@dataclass(frozen=True)
class AssocResult:
    """Output of :func:`run_assoc`.

    Attributes
    ----------
    table
        Tidy results, one row per gene (and model): ``gene beta se stat df pvalue padj h2
        delta`` plus ``model`` (``slr``/``lmm``) when both models ran, and ``trait`` first
        when several traits were tested (BH within each trait and model). SLR rows have NaN
        ``h2``/``delta``.
    cohort
        The matched, filtered cohort.
    null_model
        The LMM null model of the (first) trait (None without LMM).
    n_kinship_genes
        Genes that built ``K``.
    record
        JSON-ready run record (settings, inputs, counts, null model, timings).
    chunk_dir
        Folder of per-chunk results of a distributed run (removed by :func:`write_assoc`
        once the table is written), or None.
    null_models
        Trait → its LMM null model (None without LMM), for every trait.
    """

    table: pd.DataFrame
    cohort: Cohort
    null_model: NullModel | None
    n_kinship_genes: int
    record: dict[str, Any]
    chunk_dir: Path | None = None
    null_models: dict[str, NullModel | None] = field(default_factory=dict)


def _covariate_kinds(settings: AssocSettings) -> tuple[list[str], list[str]]:
    """Split covariates into numeric and categorical by their values in the sample sheet."""
    if not settings.covariates:
        return [], []
    sheet = read_sample_sheet(settings.samples, sample_column=settings.sample_column)
    numeric, categorical = [], []
    for name in settings.covariates:
        if name in sheet.columns and to_numeric_or_none(sheet[name]) is None:
            categorical.append(name)
        else:
            numeric.append(name)
    return numeric, categorical


@dataclass(frozen=True)
class AssocData:
    """A matched cohort with its trait vector and covariate design columns."""

    cohort: Cohort
    trait: np.ndarray
    covariates: np.ndarray | None
    covariate_names: list[str]
    trait_values: dict[str, np.ndarray] = field(default_factory=dict)


def load_assoc_data(settings: AssocSettings, *, also_required: tuple[str, ...] = ()) -> AssocData:
    """Load and match the cohort of ``settings``; check the trait and the design size.

    ``also_required``: further sheet columns a sample must have (e.g. purity in a study).

    Raises
    ------
    UserInputError
        Constant trait, fewer samples than fixed effects + 1, or any loading problem.
    """
    numeric, categorical = _covariate_kinds(settings)
    cohort = load_cohort(
        settings.expression,
        settings.samples,
        sample_column=settings.sample_column,
        orientation=settings.orientation,
        gene_column=settings.gene_column,
        barcode_length=settings.barcode_length,
        log2p1=settings.log2p1,
        missing=settings.missing,
        duplicates=settings.duplicates,
        required_columns=(*settings.traits, *also_required, *settings.covariates),
        categorical_columns=tuple(categorical),
        scores_path=settings.scores,
    )
    if len(set(settings.traits)) < len(settings.traits):
        raise UserInputError("--trait: the same trait is given twice")
    values = {}
    for name in settings.traits:
        values[name] = cohort.samples[name].to_numpy(dtype=np.float64)
        if np.ptp(values[name]) == 0:
            raise UserInputError(f"trait column {name!r} is constant in the matched samples")
    trait = values[settings.trait]
    covariates, covariate_names = covariate_matrix(cohort.samples, numeric, categorical)
    n = cohort.expression.shape[0]
    if n < len(covariate_names) + 3:
        raise UserInputError(
            f"{n} matched samples are too few for {len(covariate_names) + 2} fixed effects "
            "(intercept, covariates, gene); add samples or drop covariates"
        )
    return AssocData(cohort, trait, covariates, covariate_names, values)


def covariate_matrix(samples: pd.DataFrame, numeric: list[str], categorical: list[str]):
    """Design columns for the covariates: numeric as is, categorical as 0/1 dummies.

    A categorical column with ``L`` levels gives ``L − 1`` dummies (first level, sorted,
    is the reference). Returns ``(matrix or None, column names)``.
    """
    columns, names = [], []
    for name in numeric:
        columns.append(samples[name].to_numpy(dtype=np.float64))
        names.append(name)
    for name in categorical:
        levels = sorted(samples[name].astype(str).unique())
        if len(levels) < 2:
            raise UserInputError(
                f"covariate {name!r} has a single level ({levels[0]!r}) in the matched samples; drop it"
            )
        for level in levels[1:]:
            columns.append((samples[name].astype(str) == level).to_numpy(dtype=np.float64))
            names.append(f"{name}[{level}]")
    return (np.column_stack(columns) if columns else None), names


def kinship_mask(settings: AssocSettings, genes: pd.Index) -> tuple[np.ndarray, dict[str, Any]]:
    """Which genes build K, from ``--kinship-genes`` / ``--kinship-exclude``."""
    mask = np.ones(len(genes), dtype=bool)
    info: dict[str, Any] = {}
    if settings.kinship_genes:
        wanted = set(read_gene_list(settings.kinship_genes))
        mask &= genes.isin(wanted)
        info["kinship_genes_listed"] = len(wanted)
        info["kinship_genes_found"] = int(mask.sum())
    if settings.kinship_exclude:
        excluded = set(read_gene_list(settings.kinship_exclude))
        hit = genes.isin(excluded)
        mask &= ~hit
        info["kinship_exclude_listed"] = len(excluded)
        info["kinship_exclude_found"] = int(hit.sum())
    if mask.sum() < 2:
        raise UserInputError(
            f"only {int(mask.sum())} gene(s) left to build the kinship after "
            "--kinship-genes/--kinship-exclude; check the gene IDs match the expression file"
        )
    info["n_kinship_genes"] = int(mask.sum())
    return mask, info


def _check_scale_options(settings: AssocSettings) -> None:
    """``--precision``, ``--kinship-rank``, ``--workers``/``--scheduler`` (one-line errors)."""
    if settings.precision not in ("float64", "float32"):
        raise UserInputError(f"--precision {settings.precision!r}: use float64 or float32")
    if settings.kinship_rank is not None and settings.kinship_rank < 1:
        raise UserInputError(f"--kinship-rank {settings.kinship_rank}: must be at least 1")
    if settings.workers is not None and settings.scheduler is not None:
        raise UserInputError("give either --workers N or --scheduler ADDRESS, not both")
    if settings.workers is not None and settings.workers < 1:
        raise UserInputError(f"--workers {settings.workers}: must be at least 1")
    if not settings.worker_processes and settings.workers is None:
        raise UserInputError("--worker-threads applies to a local cluster: add --workers N")
    if settings.distributed and settings.backend != "numpy":
        raise UserInputError(
            f"--backend {settings.backend} with --workers/--scheduler: the workers run numpy; "
            "use --backend numpy on a cluster (or one GPU without --workers)"
        )


def chunk_folder(output: str | Path, settings: AssocSettings) -> Path:
    """The folder of per-chunk results of a distributed run, next to ``output``.

    It holds ``manifest.json`` with a fingerprint of the settings and of the inputs (path,
    size, modification time). A folder left by an interrupted run with the same fingerprint
    is kept, so its finished chunks are reused; any other is emptied.
    """
    target = Path(output)
    folder = target.parent / f".{target.name}.chunks"
    ignored = {"workers", "worker_processes", "scheduler", "scheduler_timeout", "threads"}
    inputs = {}
    for key in ("expression", "samples", "scores", "kinship_genes", "kinship_exclude"):
        path = getattr(settings, key)
        if path:
            info = os.stat(path)
            inputs[key] = [os.path.abspath(path), info.st_size, info.st_mtime_ns]
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "settings": {
                    k: v for k, v in dataclasses.asdict(settings).items() if k not in ignored
                },
                "inputs": inputs,
                "chunk_format": 2,  # keys model.<trait index>.field (several traits per chunk)
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    manifest = folder / "manifest.json"
    if folder.is_dir():
        try:
            same = json.loads(manifest.read_text())["fingerprint"] == fingerprint
        except (OSError, ValueError, KeyError):
            same = False
        if not same:
            shutil.rmtree(folder)
    if not folder.is_dir():
        folder.mkdir(parents=True)
        write_text_atomic(manifest, json.dumps({"fingerprint": fingerprint}) + "\n")
    return folder


def kinship_eigensystem(settings: AssocSettings, values, mask: np.ndarray):
    """``K``'s eigensystem from the selected genes: exact, or randomized rank-R."""
    chosen = values if mask.all() else values[:, np.flatnonzero(mask).tolist()]
    if settings.kinship_rank is None:
        return eigensystem_from_expression(chosen, precision=settings.precision)
    n, g = chosen.shape
    if settings.kinship_rank > min(n, g):
        raise UserInputError(
            f"--kinship-rank {settings.kinship_rank}: at most min(samples, kinship genes) = "
            f"{min(n, g)}"
        )
    return eigensystem_from_expression(
        np.asarray(to_numpy(chosen)),
        precision=settings.precision,
        rank=settings.kinship_rank,
        seed=settings.kinship_seed,
    )


def lmm_options(settings: AssocSettings) -> dict[str, Any]:
    """The LMM scan options of ``settings`` (keywords of `lmm_scan` and its relatives)."""
    return {
        "method": settings.method,
        "delta": settings.delta_value(),
        "leave_out": settings.leave_out,
        "test": settings.test,
        "standardize": settings.standardize,
        "chunk_size": settings.chunk_size,
        "precision": settings.precision,
    }


def run_slr_scan(settings: AssocSettings, values, trait, covariates, genes) -> pd.DataFrame:
    """`slr_scan` with the options of ``settings``."""
    return slr_scan(
        values,
        trait,
        gene_names=genes,
        covariates=covariates,
        standardize=settings.standardize,
        chunk_size=settings.chunk_size,
    )


def run_lmm_scan(
    settings: AssocSettings, values, trait, covariates, genes, mask, eigensystem, *, progress=None
) -> pd.DataFrame:
    """`lmm_scan` with the options of ``settings`` (K's genes ``mask``, its ``eigensystem``)."""
    return lmm_scan(
        values,
        trait,
        covariates=covariates,
        eigensystem=eigensystem,
        kinship_genes=mask,
        gene_names=genes,
        progress=progress,
        **lmm_options(settings),
    )


def _kinship(settings: AssocSettings, expression: pd.DataFrame, values, timings):
    """K's genes and eigensystem, once for every trait; ``(None, None, {})`` without LMM."""
    if settings.model not in ("lmm", "both"):
        return None, None, {}
    t0 = time.perf_counter()
    mask, kinship_info = kinship_mask(settings, expression.columns)
    eig = kinship_eigensystem(settings, values, mask)
    timings["kinship_s"] = time.perf_counter() - t0
    return mask, eig, kinship_info


def _add_time(timings: dict[str, float], key: str, t0: float) -> None:
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _run_local(settings, genes, values, trait, covariates, mask, eig, progress, timings, lmm=None):
    """One trait's scans in this process (numpy, torch or cupy); returns (tables, null).

    ``lmm``: this trait's LMM table when it was scanned with the others (`lmm_scan_traits`).
    """
    tables, null = [], None
    if settings.model in ("slr", "both"):
        t0 = time.perf_counter()
        slr = run_slr_scan(settings, values, trait, covariates, genes)
        _add_time(timings, "slr_s", t0)
        tables.append(slr.assign(model="slr", h2=np.nan, delta=np.nan))
    if settings.model in ("lmm", "both"):
        if lmm is None:
            t0 = time.perf_counter()
            lmm = run_lmm_scan(
                settings, values, trait, covariates, genes, mask, eig, progress=progress
            )
            _add_time(timings, "lmm_s", t0)
        null = lmm.attrs["null_model"]
        tables.append(lmm.assign(model="lmm"))
    return tables, null


def _lmm_all_traits(settings, genes, values, traits, covariates, mask, eig, progress, timings):
    """Every trait's LMM table from one rotation of each gene block (`lmm_scan_traits`)."""
    t0 = time.perf_counter()
    tables = lmm_scan_traits(
        values,
        traits,
        covariates=covariates,
        eigensystem=eig,
        kinship_genes=mask,
        gene_names=genes,
        progress=progress,
        **lmm_options(settings),
    )
    _add_time(timings, "lmm_s", t0)
    return tables


def _run_distributed(
    settings, client, genes, values, traits, covariates, mask, eig, chunk_dir, progress, timings
):
    """Every trait's scans on a dask cluster, one task per gene chunk for all traits.

    Returns ``{trait: (tables, null)}`` and the chunking information.
    """
    from exprlmm.assoc.distributed import scan_distributed_traits

    models = ("slr", "lmm") if settings.model == "both" else (settings.model,)
    t0 = time.perf_counter()
    results = scan_distributed_traits(
        values,
        traits,
        client=client,
        models=models,
        covariates=covariates,
        eigensystem=eig,
        kinship_genes=mask,
        gene_names=genes,
        chunk_dir=chunk_dir,
        progress=progress,
        **lmm_options(settings),
    )
    _add_time(timings, "scan_s", t0)
    out = {}
    for name, tables in results.items():
        parts, null = [], None
        if "slr" in tables:
            parts.append(tables["slr"].assign(model="slr", h2=np.nan, delta=np.nan))
        if "lmm" in tables:
            null = tables["lmm"].attrs["null_model"]
            parts.append(tables["lmm"].assign(model="lmm"))
        out[name] = (parts, null)
    first = next(iter(next(iter(results.values())).values()))
    return out, first.attrs["chunks"]


def _null_record(null: NullModel | None) -> dict[str, Any] | None:
    if null is None:
        return None
    return {
        "method": null.method,
        "delta": null.delta,
        "h2": null.h2,
        "loglik": null.loglik,
        "sigma2_g": null.sigma2_g,
        "sigma2_e": null.sigma2_e,
        "at_boundary": null.at_boundary,
    }


def run_assoc(
    settings: AssocSettings,
    *,
    progress: Callable[[int, int], None] | None = None,
    output: str | Path | None = None,
) -> AssocResult:
    """Run the association scan(s) described by ``settings``.

    Every trait of ``settings.traits`` is tested against the same matched samples (those with
    all of them) and the same K, whose eigensystem is computed once; in one process the LMM
    rotates each gene block once for all traits (`lmm_scan_traits`). With several traits the
    table starts with a ``trait`` column.

    With ``settings.workers``/``settings.scheduler`` the gene chunks run on a dask cluster
    (:mod:`exprlmm.assoc.distributed`); given ``output``, each finished chunk is written
    atomically to :func:`chunk_folder` beside it (an interrupted run resumes from there).

    Raises
    ------
    UserInputError
        For any problem with the inputs or options (one line, naming file/column and fix).
    """
    if settings.model not in ("slr", "lmm", "both"):
        raise UserInputError(f"--model {settings.model!r}: use slr, lmm or both")
    settings.delta_value()  # checks --delta
    if settings.threads < 1:
        raise UserInputError(f"--threads {settings.threads}: must be at least 1")
    _check_scale_options(settings)
    started = time.perf_counter()
    data = load_assoc_data(settings)
    cohort, covariates = data.cohort, data.covariates
    covariate_names = data.covariate_names
    expression = cohort.expression
    genes = list(expression.columns)
    n, g = expression.shape
    several = len(settings.traits) > 1
    timings: dict[str, float] = {}
    chunk_dir = None
    distributed_info: dict[str, Any] | None = None
    tables: list[pd.DataFrame] = []
    nulls: dict[str, NullModel | None] = {}
    with threadpool_limits(limits=settings.threads), contextlib.ExitStack() as stack:
        try:
            values = to_backend(
                expression.to_numpy(dtype=np.float64), settings.backend, device_name=settings.device
            )
            mask, eig, kinship_info = _kinship(settings, expression, values, timings)
            client = None
            if settings.distributed:
                from exprlmm.assoc.distributed import open_client

                chunk_dir = None if output is None else chunk_folder(output, settings)
                t0 = time.perf_counter()
                client = stack.enter_context(
                    open_client(
                        workers=settings.workers,
                        scheduler=settings.scheduler,
                        timeout=settings.scheduler_timeout,
                        processes=settings.worker_processes,
                    )
                )
                timings["cluster_start_s"] = time.perf_counter() - t0
                kind = "processes" if settings.worker_processes else "threads"
                distributed_info = {
                    "scheduler": settings.scheduler or f"LocalCluster({settings.workers} {kind})",
                    "n_workers": len(client.scheduler_info(n_workers=-1).get("workers", {})),
                    "chunk_dir": None if chunk_dir is None else str(chunk_dir),
                }
            per_trait: dict[str, tuple[list[pd.DataFrame], NullModel | None]] = {}
            if client is not None:
                per_trait, chunks = _run_distributed(
                    settings,
                    client,
                    genes,
                    values,
                    data.trait_values,
                    covariates,
                    mask,
                    eig,
                    chunk_dir,
                    progress,
                    timings,
                )
                distributed_info.update(chunks)
            else:
                shared_lmm = {}
                if several and settings.model in ("lmm", "both"):
                    shared_lmm = _lmm_all_traits(
                        settings,
                        genes,
                        values,
                        data.trait_values,
                        covariates,
                        mask,
                        eig,
                        progress,
                        timings,
                    )
                for name in settings.traits:
                    per_trait[name] = _run_local(
                        settings,
                        genes,
                        values,
                        data.trait_values[name],
                        covariates,
                        mask,
                        eig,
                        progress,
                        timings,
                        lmm=shared_lmm.get(name),
                    )
            for name in settings.traits:
                parts, nulls[name] = per_trait[name]
                tables += [part.assign(trait=name) for part in parts] if several else parts
        except ValueError as err:
            if isinstance(err, UserInputError):
                raise
            raise UserInputError(str(err)) from err
    table = pd.concat(tables, ignore_index=True)
    columns = ["gene", "beta", "se", "stat", "df", "pvalue", "padj", "h2", "delta"]
    if settings.model == "both":
        columns = ["model", *columns]
    elif settings.model == "slr":
        columns = columns[:7]
    table = table[["trait", *columns] if several else columns]
    timings["total_s"] = time.perf_counter() - started
    null = nulls[settings.trait]
    record = {
        "command": "assoc",
        "settings": dataclasses.asdict(settings),
        "inputs": {
            key: describe_input(path)
            for key, path in (
                ("expression", settings.expression),
                ("samples", settings.samples),
                ("scores", settings.scores),
                ("kinship_genes", settings.kinship_genes),
                ("kinship_exclude", settings.kinship_exclude),
            )
            if path
        },
        "seed": None if settings.kinship_rank is None else settings.kinship_seed,
        "randomness": "none: the scan is deterministic"
        if settings.kinship_rank is None
        else f"randomized SVD of K (rank {settings.kinship_rank}, seed {settings.kinship_seed})",
        "cohort": cohort.report.to_dict(),
        "design": {
            "n_samples": n,
            "n_genes_tested": g,
            "fixed_effects": ["intercept", *covariate_names, "gene"],
            "residual_df": n - len(covariate_names) - 2,
        },
        "kinship": kinship_info,
        "null_model": _null_record(null),
        "timings": timings,
    }
    if several:
        record["traits"] = list(settings.traits)
        record["null_models"] = {name: _null_record(nm) for name, nm in nulls.items()}
    if distributed_info is not None:
        record["distributed"] = distributed_info
    return AssocResult(
        table=table,
        cohort=cohort,
        null_model=null,
        n_kinship_genes=int(kinship_info.get("n_kinship_genes", 0)),
        record=record,
        chunk_dir=chunk_dir,
        null_models=nulls,
    )


def null_model_note(null: NullModel | None) -> str | None:
    """A plain-language note when the null model sits at a boundary of h²."""
    if null is None or not null.at_boundary:
        return None
    if null.at_boundary == "lower":
        return (
            f"REML put h² at {null.h2:.5f} (≈1): the kinship explains the trait entirely, so the "
            "LMM has little left to attribute to single genes. This is common at small N (tens "
            "of samples) and is a result, not a failure."
        )
    return (
        f"REML put h² at {null.h2:.2e} (≈0): the kinship explains none of the trait, so the "
        "LMM reduces to simple linear regression."
    )


def write_assoc(result: AssocResult, output: str | Path) -> Path:
    """Write the table and ``<output>.run.json`` atomically; return the record path.

    The per-chunk folder of a distributed run is removed once both are written.
    """
    write_table(result.table, output)
    record_path = run_record_path(output)
    write_run_record(record_path, {**result.record, "output": str(output)})
    if result.chunk_dir is not None:
        shutil.rmtree(result.chunk_dir, ignore_errors=True)
    return record_path
