"""``exprlmm design``: per-gene mixed models of a designed experiment, from a formula.

Thin: reads the inputs (``exprlmm.io``), calls :mod:`exprlmm.assoc.designs`, prints the design
advice, writes the tidy table and its run record atomically.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
import pandas as pd

from exprlmm.commands import split_list
from exprlmm.errors import UserInputError

STYLES: dict[str, dict[str, str]] = {
    "tidy": {},
    "limma": {"beta": "logFC", "stat": "t", "pvalue": "P.Value", "padj": "adj.P.Val"},
    "deseq2": {"beta": "log2FoldChange", "se": "lfcSE"},
}


@dataclass(frozen=True)
class DesignSettings:
    """Resolved options of one ``exprlmm design`` run (written to the run record)."""

    samples: str
    formula: str
    expression: str | None = None
    counts: str | None = None
    test: tuple[str, ...] = ()
    method: Literal["reml", "ml"] = "reml"
    ebayes: bool = True
    variance: Literal["consensus", "gene"] = "consensus"
    ddf: Literal["satterthwaite", "kenward-roger"] = "satterthwaite"
    lrt: bool = False
    normalization: Literal["TMM", "upperquartile", "none"] = "TMM"
    filter_counts: bool = True
    min_count: float = 10.0
    style: str = "tidy"
    sample_column: str | None = None
    threads: int = 1
    family: Literal["gaussian", "negbin"] = "gaussian"
    nb_test: Literal["ql", "lrt"] = "ql"


@dataclass(frozen=True)
class DesignRun:
    """What :func:`run_design` produced: the output table and the run record."""

    table: pd.DataFrame
    record: dict[str, Any]
    advice_lines: tuple[str, ...]
    summary_lines: tuple[str, ...]


def _formula_columns(formula: str, sheet: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Sheet columns used by the formula, and those to keep as text (categorical)."""
    from exprlmm.assoc.designs.formula import parse_formula

    spec = parse_formula(formula)
    tokens = re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", spec.fixed)
    used = [t for t in dict.fromkeys([*tokens, *spec.variables]) if t in sheet.columns]
    categorical = [
        c for c in used if c in spec.variables or not pd.api.types.is_numeric_dtype(sheet[c])
    ]
    # a column that is both a grouping factor and a numeric fixed covariate stays numeric
    numeric_fixed = {
        t for t in tokens if t in sheet.columns and pd.api.types.is_numeric_dtype(sheet[t])
    }
    categorical = [c for c in categorical if c not in numeric_fixed]
    return used, categorical


def check_design(settings: DesignSettings) -> tuple[list[str], Any]:
    """Read only the sample sheet and return the design advice (for ``--check-only``)."""
    from exprlmm.assoc.designs.advice import design_advice, format_advice
    from exprlmm.assoc.designs.formula import build_design
    from exprlmm.io.samples import read_sample_sheet

    sheet = read_sample_sheet(settings.samples, sample_column=settings.sample_column)
    used, categorical = _formula_columns(settings.formula, sheet)
    sheet = read_sample_sheet(
        settings.samples, sample_column=settings.sample_column, text_columns=categorical
    )
    design = build_design(settings.formula, sheet.dropna(subset=used))
    findings = design_advice(sheet.dropna(subset=used), design.spec, n_fixed=design.x.shape[1])
    return format_advice(findings), findings


def run_design(settings: DesignSettings) -> DesignRun:
    """Read, check, fit and test; raise :class:`UserInputError` for bad input."""
    from threadpoolctl import threadpool_limits

    from exprlmm.assoc.designs.advice import format_advice
    from exprlmm.assoc.designs.api import fit_design
    from exprlmm.assoc.designs.counts import calc_norm_factors, filter_by_expr, voom
    from exprlmm.assoc.designs.formula import build_design
    from exprlmm.io.cohort import load_cohort
    from exprlmm.io.record import describe_input
    from exprlmm.io.samples import read_sample_sheet

    if (settings.counts is None) == (settings.expression is None):
        raise UserInputError(
            "give exactly one of --counts (raw counts) or --expression (log scale)"
        )
    if settings.style not in STYLES:
        raise UserInputError(f"--style {settings.style!r}: use tidy, limma or deseq2")
    if settings.threads < 1:
        raise UserInputError(f"--threads {settings.threads}: must be at least 1")
    negbin = settings.family == "negbin"
    if negbin and settings.counts is None:
        raise UserInputError(
            "--family negbin models raw read counts: give --counts instead of --expression"
        )
    if negbin and (settings.ddf != "satterthwaite" or settings.method != "reml"):
        raise UserInputError(
            "--family negbin uses its own tests (--nb-test ql or lrt); drop --ddf and --ml"
        )
    if settings.nb_test not in ("ql", "lrt"):
        raise UserInputError(f"--nb-test {settings.nb_test!r}: use ql or lrt")
    started = time.perf_counter()
    matrix_path = settings.counts if settings.counts is not None else settings.expression
    sheet = read_sample_sheet(settings.samples, sample_column=settings.sample_column)
    used, categorical = _formula_columns(settings.formula, sheet)
    # check the formula against the sheet before reading the (large) matrix
    text_sheet = read_sample_sheet(
        settings.samples, sample_column=settings.sample_column, text_columns=categorical
    )
    build_design(settings.formula, text_sheet.dropna(subset=used))
    cohort = load_cohort(
        matrix_path,
        settings.samples,
        sample_column=settings.sample_column,
        required_columns=used,
        categorical_columns=categorical,
        min_samples=3,
    )
    report = cohort.report
    missing_sheet = report.samples_dropped("not in sample sheet")
    if missing_sheet:
        shown = ", ".join(missing_sheet[:5]) + (" …" if len(missing_sheet) > 5 else "")
        raise UserInputError(
            f"{settings.samples}: {len(missing_sheet)} sample(s) of {Path(matrix_path).name} "
            f"are not in the sample sheet ({shown}); add them to the sheet or remove them "
            "from the matrix"
        )
    samples = cohort.samples
    expression = cohort.expression
    design = build_design(settings.formula, samples)
    info: dict[str, Any] = {"n_genes_read": int(report.n_genes)}
    weights = None
    if settings.counts is not None:
        values = expression.to_numpy(dtype=np.float64)
        if np.any(values < 0):
            col = int(np.argmax((values < 0).any(axis=0)))
            raise UserInputError(
                f"{settings.counts}: negative count for gene {expression.columns[col]!r}; "
                "--counts takes raw read counts (use --expression for log-scale values)"
            )
        if np.any(np.abs(values - np.round(values)) > 1e-6):
            info["note_non_integer_counts"] = True
        keep = (
            filter_by_expr(values, design.x, min_count=settings.min_count)
            if settings.filter_counts
            else np.ones(values.shape[1], dtype=bool)
        )
        info["n_genes_filtered_low_counts"] = int((~keep).sum())
        if not keep.any():
            raise UserInputError(
                f"{settings.counts}: no gene passes the low-count filter (≥ "
                f"{settings.min_count:g} counts in enough samples); lower --min-count"
            )
        values = values[:, keep]
        factors = calc_norm_factors(values, method=settings.normalization)
        lib = values.sum(axis=1) * factors
        if negbin:
            expression = pd.DataFrame(
                values, index=expression.index, columns=expression.columns[keep]
            )
        else:
            v = voom(values, design.x, lib_size=lib)
            expression = pd.DataFrame(
                v.expression, index=expression.index, columns=expression.columns[keep]
            )
            weights = v.weights
        info["norm_factors"] = dict(zip(samples.index, factors.tolist(), strict=True))
        info["lib_size"] = dict(zip(samples.index, lib.tolist(), strict=True))
    with threadpool_limits(limits=settings.threads):
        t0 = time.perf_counter()
        if negbin:
            from exprlmm.assoc.designs.api import fit_design_negbin

            result = fit_design_negbin(
                expression,
                samples,
                settings.formula,
                test=settings.test or None,
                lib_size=lib,
                test_method=settings.nb_test,
            )
        else:
            result = fit_design(
                expression,
                samples,
                settings.formula,
                test=settings.test or None,
                weights=weights,
                method=settings.method,
                ebayes=settings.ebayes,
                variance=settings.variance,
                ddf=settings.ddf,
                lrt=settings.lrt,
            )
        fit_s = time.perf_counter() - t0
    table = result.table.merge(result.variance.drop(columns=["singular", "loglik"]), on="gene")
    n_unconverged = int((~result.variance["converged"]).sum())
    table = table.rename(columns=STYLES[settings.style])
    advice = format_advice(result.advice)
    n_genes = expression.shape[1]
    n_singular = int(result.variance["singular"].sum())
    if negbin and settings.nb_test == "ql":
        st = result.settings
        variance_line = (
            f"negative-binomial GLM per gene at the common Cox-Reid dispersion "
            f"{st['dispersion_common']:.3g} (edgeR estimateGLMCommonDisp); quasi-likelihood "
            f"dispersions squeezed to an abundance trend (prior df {st['ql_df_prior']:.3g}); "
            "F tests as edgeR glmQLFit + glmQLFTest"
        )
    elif negbin:
        st = result.settings
        variance_line = (
            f"negative-binomial GLM per gene, dispersions by {st['dispersion_method']} "
            f"(median {st['dispersion_median']:.3g}; {st['dispersion_at_lower_bound']} at the "
            "lower bound); likelihood-ratio tests as edgeR glmLRT"
        )
    elif settings.variance == "consensus" and result.design.random:
        ratios = result.settings.get("consensus_ratios", {})
        shown = ", ".join(f"{k}: {v:.3g}" for k, v in ratios.items())
        variance_line = (
            f"variance ratios σ²_group/σ²_residual pooled across genes ({shown}); a gene's own "
            f"REML fit would be singular for {n_singular} of {n_genes} genes"
        )
    elif result.design.random:
        variance_line = (
            f"singular fits: {n_singular} of {n_genes} genes (variance component at 0: those "
            "genes get the fixed-effects model)"
        )
    else:
        variance_line = "no random effects: fixed-effects (weighted) least squares"
    filter_line = []
    if settings.counts is not None:
        dropped = info["n_genes_filtered_low_counts"]
        filter_line = [
            f"low-count filter (filterByExpr, min count {settings.min_count:g}): kept "
            f"{n_genes} of {n_genes + dropped} genes; {settings.normalization} factors "
            + ", ".join(f"{v:.3f}" for v in info["norm_factors"].values())
        ]
    fitted_line = (
        f"fitted {n_genes} genes × {len(result.tested)} term(s) "
        f"({settings.method.upper()}, "
        + ("Kenward–Roger" if settings.ddf == "kenward-roger" else "Satterthwaite")
        + " df"
        + (", empirical-Bayes variances" if settings.ebayes else "")
        + ")"
    )
    if negbin:
        kind = "quasi-likelihood F" if settings.nb_test == "ql" else "LRT"
        fitted_line = (
            f"fitted {n_genes} genes × {len(result.tested)} term(s) (negative binomial, {kind})"
        )
    lines = [*report.summary_lines(), *filter_line, fitted_line, variance_line]
    if n_unconverged:
        lines.append(
            f"warning: the {'NB GLM / dispersion' if negbin else 'variance-component'} iteration "
            f"did not converge for {n_unconverged} gene(s) (column converged = False); "
            "treat their results with caution"
        )
    padj = result.table.groupby("term")["padj"]
    for term, values in padj:
        lines.append(f"{term}: {int((values < 0.05).sum())} genes at BH-adjusted p < 0.05")
    record = {
        "command": "design",
        "settings": asdict(settings),
        "inputs": {
            "samples": describe_input(settings.samples),
            "matrix": describe_input(matrix_path),
        },
        "design": {
            "columns": list(result.design.columns),
            "terms": {k: list(v) for k, v in result.design.terms.items()},
            "random": {k: list(v) for k, v in result.design.levels.items()},
            "tested": list(result.tested),
        },
        "advice": [f.to_dict() for f in result.advice],
        "cohort": report.to_dict(),
        "counts": info,
        "fit": result.settings,
        "timings": {"fit_s": fit_s, "total_s": time.perf_counter() - started},
    }
    return DesignRun(table, record, tuple(advice), tuple(lines))


def write_plots(table: pd.DataFrame, output: str, *, style: str = "tidy") -> list[Path]:
    """Volcano and QQ figures next to ``output`` (atomic writes); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from exprlmm.io.atomic import atomic_path
    from exprlmm.pl.designs import qq_plot, volcano_plot

    inverse = {v: k for k, v in STYLES[style].items()}
    tidy = table.rename(columns=inverse)
    terms = list(dict.fromkeys(tidy["term"]))
    paths = []
    for kind, draw in (("volcano", volcano_plot), ("qq", qq_plot)):
        fig, axes = plt.subplots(1, len(terms), figsize=(4.5 * len(terms), 4), squeeze=False)
        for ax, term in zip(axes[0], terms, strict=True):
            draw(tidy, term, ax=ax)
        fig.tight_layout()
        path = Path(f"{output}.{kind}.png")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


@click.command(context_settings={"max_content_width": 100})
@click.option(
    "--counts",
    type=click.Path(dir_okay=False),
    help="Raw read counts (genes × samples or samples × genes): filtered, TMM-normalised, logCPM with voom precision weights.",
)
@click.option(
    "--expression",
    "-e",
    type=click.Path(dir_okay=False),
    help="Log-scale expression (e.g. logCPM, log2 TPM); fitted unweighted.",
)
@click.option(
    "--samples",
    "-s",
    required=True,
    type=click.Path(dir_okay=False),
    help="Sample sheet with the formula's variables; IDs in --sample-column.",
)
@click.option(
    "--formula",
    "-f",
    required=True,
    help="Model, lme4 syntax, e.g. '~ weight + urea + (1|group)'. Random intercepts only; crossed '(1|a) + (1|b)', nested '(1|a/b)'.",
)
@click.option(
    "--test",
    "-t",
    default=None,
    help="Comma-separated fixed terms to test (default: all but the intercept). A categorical term gets an F test.",
)
@click.option(
    "--reml/--ml",
    "reml",
    default=True,
    show_default=True,
    help="Variance components by REML (default; Satterthwaite df as lmerTest) or ML.",
)
@click.option(
    "--ebayes/--no-ebayes",
    default=True,
    show_default=True,
    help="Moderate residual variances across genes (limma eBayes); adds prior df to each test.",
)
@click.option(
    "--variance",
    type=click.Choice(["consensus", "gene"]),
    default="consensus",
    show_default=True,
    help="consensus: variance ratios pooled across genes, then GLS per gene (as limma "
    "duplicateCorrelation; calibrated at small N); gene: each gene's own REML fit with "
    "Satterthwaite df (as lmer + lmerTest; use with --no-ebayes to reproduce lmerTest).",
)
@click.option(
    "--ddf",
    type=click.Choice(["satterthwaite", "kenward-roger"]),
    default="satterthwaite",
    show_default=True,
    help="Denominator df of the tests, as lmerTest. kenward-roger needs --variance gene "
    "--no-ebayes (and is checked against pbkrtest on unweighted fits only).",
)
@click.option(
    "--lrt",
    is_flag=True,
    help="Likelihood-ratio tests (ML refits without each tested term; χ² on its df) instead "
    "of Wald tests; needs --variance gene --no-ebayes.",
)
@click.option(
    "--family",
    type=click.Choice(["gaussian", "negbin"]),
    default="gaussian",
    show_default=True,
    help="gaussian: (voom-weighted) linear mixed model on log scale. negbin: negative-binomial "
    "GLM per gene on raw --counts, as edgeR (TMM offsets; tests: see --nb-test); "
    "fixed-effects formulas only, --ebayes/--variance do not apply.",
)
@click.option(
    "--nb-test",
    type=click.Choice(["ql", "lrt"]),
    default=None,
    help="Test of --family negbin. ql (default): quasi-likelihood F test at the common "
    "Cox-Reid dispersion, QL dispersions squeezed to an abundance trend (edgeR glmQLFit + "
    "glmQLFTest). lrt: likelihood-ratio test at Cox-Reid dispersions shrunk to the common "
    "one with prior df 10 (edgeR glmLRT); anti-conservative FDR at N = 10.",
)
@click.option(
    "--normalization",
    type=click.Choice(["TMM", "upperquartile", "none"]),
    default="TMM",
    show_default=True,
    help="Library-size normalisation of --counts (edgeR calcNormFactors).",
)
@click.option(
    "--min-count",
    type=float,
    default=10.0,
    show_default=True,
    help="Low-count filter of --counts (edgeR filterByExpr min.count).",
)
@click.option(
    "--no-filter", is_flag=True, help="Keep every gene of --counts (no low-count filter)."
)
@click.option(
    "--style",
    type=click.Choice(sorted(STYLES)),
    default="tidy",
    show_default=True,
    help="Column names: tidy (beta se df stat pvalue padj), limma (logFC t P.Value adj.P.Val) or deseq2 (log2FoldChange lfcSE).",
)
@click.option(
    "--sample-column", default=None, help="Sample-ID column of the sheet (default: first)."
)
@click.option("--threads", type=int, default=1, show_default=True, help="BLAS threads.")
@click.option(
    "--check-only",
    is_flag=True,
    help="Print the design advice from the sample sheet and stop (no matrix needed).",
)
@click.option(
    "--plots",
    is_flag=True,
    help="Also write <output>.volcano.png and <output>.qq.png (one panel per tested term).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Result table (.tsv/.csv, optionally .gz, or .parquet); a run record <output>.run.json is written beside it.",
)
def design(**options) -> None:
    """Fit gene ~ formula for every gene of a designed experiment and test fixed terms.

    \b
    Example (10 mice in 3 groups, weight and urea measured):
      exprlmm design --counts counts.tsv --samples mice.tsv \\
                     --formula "~ weight + urea + (1|group)" -o out.tsv

    Output: one row per gene × tested term with beta se df stat pvalue padj (BH within the
    term), ndf and test (t or F), singular (a variance component at 0: the fit is then the
    fixed-effects model), the per-gene variance components sigma2_* and converged.
    Design advice (few levels, confounding, scores of measured values, size) is printed
    first and written to the run record.

    By default the random-effect variance ratios are pooled across genes and the residual
    variances moderated (empirical Bayes): calibrated at N ≈ 10 (docs/designs.md).
    --variance gene --no-ebayes reproduces lmer + lmerTest gene by gene.
    """
    from exprlmm.io.record import run_record_path, write_run_record
    from exprlmm.io.tables import write_table

    settings = DesignSettings(
        samples=options["samples"],
        formula=options["formula"],
        expression=options["expression"],
        counts=options["counts"],
        test=split_list(options["test"]),
        method="reml" if options["reml"] else "ml",
        ebayes=options["ebayes"],
        variance=options["variance"],
        ddf=options["ddf"],
        lrt=options["lrt"],
        normalization=options["normalization"],
        filter_counts=not options["no_filter"],
        min_count=options["min_count"],
        style=options["style"],
        sample_column=options["sample_column"],
        threads=options["threads"],
        family=options["family"],
        nb_test=options["nb_test"] or "ql",
    )
    if options["nb_test"] is not None and options["family"] != "negbin":
        raise UserInputError("--nb-test applies to --family negbin only")
    if options["check_only"]:
        lines, _ = check_design(settings)
        for line in lines or ["no design problems found"]:
            click.echo(line)
        return
    if not options["output"]:
        raise UserInputError("--output is required (or use --check-only for the advice alone)")
    try:
        run = run_design(settings)
    except UserInputError:
        try:
            lines, _ = check_design(settings)
        except UserInputError:
            lines = []
        for line in lines:
            click.echo(line, err=True)
        raise
    for line in run.advice_lines:
        click.echo(line, err=True)
    for line in run.summary_lines:
        click.echo(line, err=True)
    output = options["output"]
    write_table(run.table, output)
    if options["plots"]:
        for path in write_plots(run.table, output, style=settings.style):
            click.echo(f"wrote {path}", err=True)
    record = run_record_path(output)
    write_run_record(record, {**run.record, "output": str(output)})
    click.echo(f"wrote {Path(output)} and {record}", err=True)
