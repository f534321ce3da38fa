"""The association pipeline: inputs → cohort → SLR / LMM scans → tidy table + run record.

Thin glue over the pure API (:func:`exprlmm.assoc.slr_scan`, :func:`exprlmm.assoc.lmm_scan`)
and the readers in :mod:`exprlmm.io`; the CLI (:mod:`exprlmm.commands.assoc`) only parses
options into :class:`AssocSettings` and calls :func:`run_assoc` and :func:`write_assoc`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from exprlmm._xp import to_backend
from exprlmm.assoc.lmm import NullModel, lmm_scan
from exprlmm.assoc.slr import slr_scan
from exprlmm.errors import UserInputError
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
        delta`` plus ``model`` (``slr``/``lmm``) when both models ran. SLR rows have NaN
        ``h2``/``delta``.
    cohort
        The matched, filtered cohort.
    null_model
        The LMM null model (None without LMM).
    n_kinship_genes
        Genes that built ``K``.
    record
        JSON-ready run record (settings, inputs, counts, null model, timings).
    """

    table: pd.DataFrame
    cohort: Cohort
    null_model: NullModel | None
    n_kinship_genes: int
    record: dict[str, Any]


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


def _kinship_mask(settings: AssocSettings, genes: pd.Index) -> tuple[np.ndarray, dict[str, Any]]:
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


def run_assoc(
    settings: AssocSettings, *, progress: Callable[[int, int], None] | None = None
) -> AssocResult:
    """Run the association scan(s) described by ``settings``.

    Raises
    ------
    UserInputError
        For any problem with the inputs or options (one line, naming file/column and fix).
    """
    if settings.model not in ("slr", "lmm", "both"):
        raise UserInputError(f"--model {settings.model!r}: use slr, lmm or both")
    delta = settings.delta_value()
    if settings.threads < 1:
        raise UserInputError(f"--threads {settings.threads}: must be at least 1")
    started = time.perf_counter()
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
        required_columns=(settings.trait, *settings.covariates),
        categorical_columns=tuple(categorical),
        scores_path=settings.scores,
    )
    expression = cohort.expression
    trait = cohort.samples[settings.trait].to_numpy(dtype=np.float64)
    if np.ptp(trait) == 0:
        raise UserInputError(f"trait column {settings.trait!r} is constant in the matched samples")
    covariates, covariate_names = covariate_matrix(cohort.samples, numeric, categorical)
    n, g = expression.shape
    if n < len(covariate_names) + 3:
        raise UserInputError(
            f"{n} matched samples are too few for {len(covariate_names) + 2} fixed effects "
            "(intercept, covariates, gene); add samples or drop covariates"
        )
    timings: dict[str, float] = {}
    tables = []
    null = None
    kinship_info: dict[str, Any] = {}
    genes = list(expression.columns)
    with threadpool_limits(limits=settings.threads):
        try:
            values = to_backend(
                expression.to_numpy(dtype=np.float64), settings.backend, device_name=settings.device
            )
            if settings.model in ("slr", "both"):
                t0 = time.perf_counter()
                slr = slr_scan(
                    values,
                    trait,
                    gene_names=genes,
                    covariates=covariates,
                    standardize=settings.standardize,
                    chunk_size=settings.chunk_size,
                )
                timings["slr_s"] = time.perf_counter() - t0
                tables.append(slr.assign(model="slr", h2=np.nan, delta=np.nan))
            if settings.model in ("lmm", "both"):
                t0 = time.perf_counter()
                mask, kinship_info = _kinship_mask(settings, expression.columns)
                eig = eigensystem_from_expression(
                    values if mask.all() else values[:, np.flatnonzero(mask).tolist()]
                )
                timings["kinship_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                lmm = lmm_scan(
                    values,
                    trait,
                    covariates=covariates,
                    eigensystem=eig,
                    kinship_genes=mask,
                    method=settings.method,
                    delta=delta,
                    leave_out=settings.leave_out,
                    test=settings.test,
                    standardize=settings.standardize,
                    gene_names=genes,
                    chunk_size=settings.chunk_size,
                    progress=progress,
                )
                timings["lmm_s"] = time.perf_counter() - t0
                null = lmm.attrs["null_model"]
                tables.append(lmm.assign(model="lmm"))
        except ValueError as err:
            if isinstance(err, UserInputError):
                raise
            raise UserInputError(str(err)) from err
    table = pd.concat(tables, ignore_index=True)
    columns = ["gene", "beta", "se", "stat", "df", "pvalue", "padj", "h2", "delta"]
    if settings.model == "both":
        table = table[["model", *columns]]
    elif settings.model == "slr":
        table = table[columns[:7]]
    else:
        table = table[columns]
    timings["total_s"] = time.perf_counter() - started
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
        "seed": None,
        "randomness": "none: the scan is deterministic",
        "cohort": cohort.report.to_dict(),
        "design": {
            "n_samples": n,
            "n_genes_tested": g,
            "fixed_effects": ["intercept", *covariate_names, "gene"],
            "residual_df": n - len(covariate_names) - 2,
        },
        "kinship": kinship_info,
        "null_model": None
        if null is None
        else {
            "method": null.method,
            "delta": null.delta,
            "h2": null.h2,
            "loglik": null.loglik,
            "sigma2_g": null.sigma2_g,
            "sigma2_e": null.sigma2_e,
            "at_boundary": null.at_boundary,
        },
        "timings": timings,
    }
    return AssocResult(
        table=table,
        cohort=cohort,
        null_model=null,
        n_kinship_genes=int(kinship_info.get("n_kinship_genes", 0)),
        record=record,
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
    """Write the table and ``<output>.run.json`` atomically; return the record path."""
    write_table(result.table, output)
    record_path = run_record_path(output)
    write_run_record(record_path, {**result.record, "output": str(output)})
    return record_path
