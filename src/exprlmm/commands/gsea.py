"""``exprlmm gsea``: pre-ranked GSEA of a ranking (.rnk or an assoc table) against gene sets."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click

from exprlmm.errors import UserInputError

log = logging.getLogger(__name__)


@click.command(context_settings={"show_default": True})
@click.option("--rnk", type=click.Path(dir_okay=False), help="Broad .rnk file (gene<TAB>score).")
@click.option(
    "--results",
    type=click.Path(dir_okay=False),
    help="An `exprlmm assoc` result table to rank genes from.",
)
@click.option("--column", default="stat", help="Column of --results used as the signed score.")
@click.option(
    "--model",
    type=click.Choice(["slr", "lmm"]),
    default=None,
    help="Model to use when --results holds both (column 'model').",
)
@click.option(
    "--gmt",
    "gmt",
    multiple=True,
    required=True,
    help="Gene sets: a GMT file or a built-in collection (histone, ribosomal, estimate, "
    "reactome, wikipathways); repeatable.",
)
@click.option("--permutations", type=click.IntRange(min=1), default=1000)
@click.option("--seed", type=int, default=0, help="Random seed (recorded in the run record).")
@click.option(
    "--weight",
    type=click.FloatRange(min=0),
    default=1.0,
    help="Exponent p of the weighted KS statistic (0 classic, 1 weighted, 2 weighted_p2).",
)
@click.option("--min-size", type=click.IntRange(min=1), default=15)
@click.option("--max-size", type=click.IntRange(min=1), default=500)
@click.option(
    "--mode",
    type=click.Choice(["fast", "broad"]),
    default="fast",
    help="fast: vectorised shared null; broad: GSEA 4.x's java.util.Random stream.",
)
@click.option("--tail", type=click.Choice(["multilevel", "none"]), default="multilevel")
@click.option("--tail-eps", type=float, default=1e-10, help="Smallest tail p-value estimated.")
@click.option("--tail-sample-size", type=click.IntRange(min=3), default=101)
@click.option(
    "--tail-moves",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    help="MCMC effort per multilevel level (1 = fgsea's); raise it for small sets whose ES "
    "one extreme gene carries (see docs/gsea.md).",
)
@click.option(
    "--q-extrapolation",
    type=click.Choice(["none", "loess"]),
    default="none",
    help="loess: add fdr_loess, the paper's LOESS extrapolation of q = 0 from NES.",
)
@click.option(
    "--remove-genes",
    default=None,
    help="Remove these genes from every other set first: a built-in name (e.g. histone) or a "
    "file (GMT or one gene per line).",
)
@click.option(
    "--style",
    type=click.Choice(["exprlmm", "gseapy", "fgsea"]),
    default="exprlmm",
    help="Column names of the output table.",
)
@click.option(
    "--backend",
    type=click.Choice(["numpy", "torch", "cupy"]),
    default="numpy",
    help="Array library for the fast-mode permutation null: numpy (CPU) or torch (GPU; extra "
    "[gpu]: null and its statistics on the device); cupy is not supported for gsea yet. "
    "Tail p-values stay on the host; never a silent fall-back to the CPU.",
)
@click.option("--device", default=None, help="torch device for --backend torch (default: cuda).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    required=True,
    help="Result table (TSV). The run record goes to <output>.run.json.",
)
def gsea(
    rnk: str | None,
    results: str | None,
    column: str,
    model: str | None,
    gmt: tuple[str, ...],
    permutations: int,
    seed: int,
    weight: float,
    min_size: int,
    max_size: int,
    mode: str,
    tail: str,
    tail_eps: float,
    tail_sample_size: int,
    tail_moves: float,
    q_extrapolation: str,
    remove_genes: str | None,
    style: str,
    backend: str,
    device: str | None,
    output: str,
) -> None:
    """Pre-ranked gene-set enrichment analysis (GSEA, Broad statistics).

    \b
    Examples:
      exprlmm gsea --rnk results.rnk --gmt sets.gmt --permutations 10000 --seed 149 -o gsea.tsv
      exprlmm gsea --results results.tsv --column stat --model lmm --gmt reactome -o gsea.tsv
      exprlmm gsea --rnk r.rnk --gmt reactome --gmt histone --remove-genes histone -o g.tsv
    """

    from exprlmm.gsea import GseaSettings, prerank, rename_columns
    from exprlmm.io.atomic import atomic_path
    from exprlmm.io.gmt import load_gene_sets, removal_genes
    from exprlmm.io.record import describe_input, run_record_path, write_run_record
    from exprlmm.io.rnk import read_ranking_table, read_rnk

    if (rnk is None) == (results is None):
        raise UserInputError("give exactly one of --rnk or --results")
    if rnk is not None:
        scores = read_rnk(rnk)
    else:
        scores = read_ranking_table(str(results), column=column, model=model)  # type: ignore[arg-type]
    sets = load_gene_sets(gmt)
    genes_out, exempt = removal_genes(remove_genes)
    settings = GseaSettings(
        permutations=permutations,
        seed=seed,
        weight=weight,
        min_size=min_size,
        max_size=max_size,
        mode=mode,  # type: ignore[arg-type]
        tail=tail,  # type: ignore[arg-type]
        tail_sample_size=tail_sample_size,
        tail_eps=tail_eps,
        tail_moves=tail_moves,
        q_extrapolation=q_extrapolation,  # type: ignore[arg-type]
        backend=backend,  # type: ignore[arg-type]
        device=device,
    )
    t0 = time.perf_counter()
    res = prerank(scores, sets, settings, remove_genes=genes_out, exempt_sets=exempt)
    elapsed = time.perf_counter() - t0
    table = rename_columns(res.table, style)  # type: ignore[arg-type]

    files = {"rnk": rnk, "results": results, "remove_genes": remove_genes}
    files.update({f"gmt[{i}]": name for i, name in enumerate(gmt)})
    record = {
        "command": "gsea",
        "argv": sys.argv,
        "inputs": {
            key: describe_input(value) if value and Path(value).is_file() else value
            for key, value in files.items()
        },
        "column": column if results else None,
        "model": model,
        **res.record,
        "style": style,
        "elapsed_s": round(elapsed, 3),
    }
    out = Path(output)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    write_run_record(run_record_path(out), record)
    log.info("wrote %s (%d gene sets) in %.1f s", out, len(table), elapsed)
