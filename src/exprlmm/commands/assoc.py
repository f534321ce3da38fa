"""``exprlmm assoc``: SLR and LMM association of every gene with a trait."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from exprlmm.commands import split_list


@click.command(context_settings={"max_content_width": 100})
@click.option(
    "--expression",
    "-e",
    required=True,
    type=click.Path(dir_okay=False),
    help="Expression matrix: TSV/CSV (optionally .gz), parquet, .h5ad or GCT; genes in "
    "rows or columns (detected by matching IDs to the sample sheet).",
)
@click.option(
    "--samples",
    "-s",
    required=True,
    type=click.Path(dir_okay=False),
    help="Sample sheet (TSV/CSV) with the trait and covariates; IDs in --sample-column.",
)
@click.option(
    "--trait",
    "-t",
    required=True,
    multiple=True,
    help="Column (of the sample sheet or of --scores) tested against each gene, e.g. icna. "
    "Repeat for several traits: samples with all of them, K built once, one table with a "
    "`trait` column.",
)
@click.option(
    "--scores",
    type=click.Path(dir_okay=False),
    help="Optional per-sample table joined by sample ID, e.g. the output of `exprlmm icna`.",
)
@click.option(
    "--covariates",
    "-c",
    default=None,
    help="Comma-separated fixed covariates (numeric, or categorical → dummy columns), "
    "e.g. purity,age.",
)
@click.option(
    "--model",
    type=click.Choice(["slr", "lmm", "both"]),
    default="both",
    show_default=True,
    help="slr: ordinary least squares; lmm: linear mixed model with kinship K; both: one "
    "table with a `model` column.",
)
@click.option(
    "--reml/--ml",
    "reml",
    default=True,
    show_default=True,
    help="Estimate the variance components by REML (default) or ML.",
)
@click.option(
    "--delta",
    default="null",
    show_default=True,
    help="null: δ = σe²/σg² fitted once on the null model and shared by all genes (PyLMM, "
    "FaST-LMM; best calibrated on confounded data); refit: each gene's own optimum; or a "
    "positive number.",
)
@click.option(
    "--leave-out",
    type=click.Choice(["none", "gene"]),
    default="none",
    show_default=True,
    help="gene: remove each tested gene from its own kinship (exact rank-one update).",
)
@click.option(
    "--test",
    type=click.Choice(["wald", "lrt"]),
    default="wald",
    show_default=True,
    help="Wald t test with N − q df (as PyLMM) or likelihood-ratio test (χ², 1 df; ML fits).",
)
@click.option(
    "--kinship-genes",
    type=click.Path(dir_okay=False),
    help="File of gene IDs (one per line) that build K; default all genes.",
)
@click.option(
    "--kinship-exclude",
    type=click.Path(dir_okay=False),
    help="File of gene IDs left out of K (e.g. purity-associated genes, as Yao et al.).",
)
@click.option(
    "--no-standardize",
    is_flag=True,
    help="Report beta per unit of expression instead of per standard deviation (ddof=0).",
)
@click.option(
    "--sample-column", default=None, help="Sample-ID column of the sheet (default: first)."
)
@click.option(
    "--orientation",
    type=click.Choice(["auto", "genes-rows", "genes-columns"]),
    default="auto",
    show_default=True,
    help="Layout of the expression matrix.",
)
@click.option(
    "--gene-column",
    default=None,
    help="Column (genes-in-rows files) holding gene IDs (default: first).",
)
@click.option(
    "--barcode-length",
    type=int,
    default=15,
    show_default=True,
    help="TCGA barcodes are matched on this many leading characters (15 = sample level).",
)
@click.option(
    "--log2p1", is_flag=True, help="Transform expression as log2(x + 1) (un-logged RSEM)."
)
@click.option(
    "--missing",
    type=click.Choice(["drop-gene", "drop-sample", "error"]),
    default="drop-gene",
    show_default=True,
    help="What to do with NaN/inf expression values.",
)
@click.option(
    "--duplicates",
    type=click.Choice(["first", "mean", "error"]),
    default="first",
    show_default=True,
    help="Duplicate gene IDs: keep the first, average, or stop.",
)
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="BLAS threads (1 is safest on shared machines; OpenBLAS oversubscription is slow).",
)
@click.option("--chunk-size", type=int, default=None, help="Genes per block (bounded memory).")
@click.option(
    "--backend",
    type=click.Choice(["numpy", "torch", "cupy"]),
    default="numpy",
    show_default=True,
    help="Array library for the LMM: numpy (CPU) or torch/cupy (GPU; extra [gpu]). "
    "Same numbers at float64; never a silent fall-back to the CPU.",
)
@click.option("--device", default=None, help="torch device for --backend torch (default: cuda).")
@click.option(
    "--precision",
    type=click.Choice(["float64", "float32"]),
    default="float64",
    show_default=True,
    help="float32 runs the N²-per-gene products of the LMM (ZZᵀ, eigh, whitening/rotation) "
    "in single precision; null model and statistics stay float64. Measured at N=1,090, "
    "G=20,000: max |Δ −log10 p| 1.0e-5 (null δ) and 3.5e-5 (refit), same top 100 genes "
    "(benchmarks/README.md).",
)
@click.option(
    "--kinship-rank",
    type=int,
    default=None,
    help="Approximate K by its leading R components from a randomized SVD of the "
    "standardised expression (dask svd_compressed, or numpy), the rest of the spectrum "
    "by its mean, for very large N. Changes the model: at N=1,090 the p-values moved by "
    "up to 0.9–1.9 in −log10 p for R=10–500 (benchmarks/README.md). Default: exact.",
)
@click.option(
    "--kinship-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the randomized SVD (--kinship-rank).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Run the gene chunks on a local dask cluster of N worker processes (1 thread "
    "each; extra [dask]). Same table as a single-process run.",
)
@click.option(
    "--worker-threads",
    is_flag=True,
    help="With --workers: threads of this process instead of processes (no data transfer; "
    "a worker crash then takes this process with it; benchmarks/README.md).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the gene chunks on an existing dask cluster, e.g. tcp://10.0.0.5:8786. "
    "Finished chunks are written to a folder beside --output; a rerun of an interrupted "
    "run with the same inputs reuses them.",
)
@click.option(
    "--scheduler-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for --scheduler to answer.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="Result table (.tsv, .csv, optionally .gz, or .parquet); a run record "
    "<output>.run.json is written beside it.",
)
def assoc(**options) -> None:
    """Test every gene's expression against a trait by SLR and/or LMM.

    \b
    Example (TCGA cohort, ICNA from `exprlmm icna`):
      exprlmm assoc -e expr.tsv.gz -s samples.tsv --scores icna.tsv -t icna \\
                    --model both -o results.tsv

    The LMM is y = b0 + covariates + b1·gene + u + e, u ~ N(0, σg² K), K = Z Zᵀ / n_genes
    from the per-gene standardised expression.
    """
    # imported here so that `exprlmm --help` and other commands start fast
    from exprlmm.pipeline import AssocSettings, null_model_note, run_assoc, write_assoc

    settings = AssocSettings(
        expression=options["expression"],
        samples=options["samples"],
        trait=options["trait"][0],
        more_traits=tuple(options["trait"][1:]),
        scores=options["scores"],
        covariates=split_list(options["covariates"]),
        model=options["model"],
        method="reml" if options["reml"] else "ml",
        delta=options["delta"],
        leave_out=options["leave_out"],
        test=options["test"],
        kinship_genes=options["kinship_genes"],
        kinship_exclude=options["kinship_exclude"],
        standardize=not options["no_standardize"],
        sample_column=options["sample_column"],
        orientation=options["orientation"],
        gene_column=options["gene_column"],
        barcode_length=options["barcode_length"],
        log2p1=options["log2p1"],
        missing=options["missing"],
        duplicates=options["duplicates"],
        threads=options["threads"],
        chunk_size=options["chunk_size"],
        backend=options["backend"],
        device=options["device"],
        precision=options["precision"],
        kinship_rank=options["kinship_rank"],
        kinship_seed=options["kinship_seed"],
        workers=options["workers"],
        worker_processes=not options["worker_threads"],
        scheduler=options["scheduler"],
        scheduler_timeout=options["scheduler_timeout"],
    )
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=None, unit="gene", desc="LMM scan", file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        result = run_assoc(settings, progress=progress, output=options["output"])
    finally:
        if bar is not None:
            bar.close()
    for line in result.cohort.report.summary_lines():
        click.echo(line, err=True)
    several = len(result.null_models) > 1
    for trait, nm in result.null_models.items():
        if nm is None:
            continue
        prefix = f"{trait}: " if several else ""
        click.echo(
            f"{prefix}LMM null model ({nm.method.upper()}): h² = {nm.h2:.4f}, "
            f"δ = {nm.delta:.4g}, K from {result.n_kinship_genes} genes",
            err=True,
        )
        note = null_model_note(nm)
        if note:
            click.echo(f"{prefix}note: {note}", err=True)
    record = write_assoc(result, options["output"])
    table = result.table
    keys = [k for k in ("trait", "model") if k in table]
    for key, part in table.groupby(keys, sort=False) if keys else [((), table)]:
        key = key if isinstance(key, tuple) else (key,)
        label = "".join(f"{k.upper() if k in ('slr', 'lmm') else k}: " for k in key)
        hits = int((part["padj"] < 0.05).sum())
        click.echo(f"{label}{hits} of {len(part)} genes at BH-adjusted p < 0.05", err=True)
    click.echo(f"wrote {Path(options['output'])} and {record}", err=True)
