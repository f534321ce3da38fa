"""Does the LMM correct confounding? SLR vs LMM (null δ, refit, leave-gene-out) on simulated cohorts.

For each seed, a tumour cohort is drawn from :func:`exprlmm.datasets.confounded_cohort`
(purity drives the trait and a quarter of the genes; a few genes respond to the trait) and
every gene is tested against the trait by

- ``SLR``            simple linear regression, :func:`exprlmm.assoc.slr_scan`;
- ``LMM null-δ``     :func:`exprlmm.assoc.lmm_scan` with ``delta="null"`` (the default);
- ``LMM refit``      ``delta="refit"`` (each gene's own REML optimum);
- ``LMM leave-gene-out``  ``delta="null", leave_out="gene"``.

All LMMs use one kinship ``K = ZZᵀ/G`` from all genes (eigendecomposed once per seed);
purity is *not* given to any method. Reported per method:

- ``lambda_gc``: genomic inflation over the non-causal genes,
  :math:`\\lambda_{GC} = \\mathrm{median}(\\chi^2_1) / 0.4549`, with
  :math:`\\chi^2_1 = F^{-1}_{\\chi^2_1}(1 - p)` (1 df);
- Bonferroni hits (:math:`p < 0.05 / G`) that are *causal* (the trait acts on them),
  *confounded* (purity genes that are not causal) and *other*;
- the median h² of confounded genes, of other genes and of the confounded genes that
  were hits (these differ only under refit).

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/confounding.py   # 10 seeds, N=500, G=5000
    .venv/bin/python benchmarks/confounding.py --seeds 1 2 --n-samples 300 --n-genes 2000

Prints Markdown tables (the mean over seeds, then one row per seed and method); ``--json``
also writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from exprlmm.assoc import lmm_scan, slr_scan
from exprlmm.datasets import SimulatedCohort, confounded_cohort
from exprlmm.io.atomic import write_text_atomic
from exprlmm.kinship import eigensystem_from_expression

MEDIAN_CHI2_1DF = float(stats.chi2.ppf(0.5, 1))  # 0.4549

METHODS = ("SLR", "LMM null-δ", "LMM refit", "LMM leave-gene-out")


@dataclass(frozen=True)
class MethodSummary:
    """One method on one simulated cohort."""

    seed: int
    method: str
    lambda_gc: float
    hits_causal: int
    hits_confounded: int
    hits_other: int
    median_h2_confounded: float
    median_h2_other: float
    median_h2_confounded_hits: float
    seconds: float


def genomic_inflation(pvalues: np.ndarray) -> float:
    r"""Genomic inflation :math:`\lambda_{GC} = \mathrm{median}(\chi^2_1) / 0.4549`.

    Each p-value is turned into the 1-df χ² with the same upper tail,
    :math:`\chi^2 = F^{-1}_{\chi^2_1}(1 - p)` (``isf``, exact for tiny p); NaNs are ignored.
    """
    p = np.asarray(pvalues, dtype=float)
    p = p[np.isfinite(p)]
    return float(np.median(stats.chi2.isf(p, 1)) / MEDIAN_CHI2_1DF)


def summarise(
    result: pd.DataFrame, cohort: SimulatedCohort, *, method: str, seconds: float, alpha: float
) -> MethodSummary:
    """Inflation over non-causal genes and Bonferroni hits by ground-truth class."""
    p = result["pvalue"].to_numpy()
    hits = p < alpha / p.size
    causal, confounded = cohort.is_causal, cohort.is_confounded
    other = ~causal & ~confounded
    h2 = result["h2"].to_numpy() if "h2" in result else None
    return MethodSummary(
        seed=cohort.settings.seed,
        method=method,
        lambda_gc=genomic_inflation(p[~causal]),
        hits_causal=int((hits & causal).sum()),
        hits_confounded=int((hits & confounded).sum()),
        hits_other=int((hits & other).sum()),
        median_h2_confounded=float(np.median(h2[confounded])) if h2 is not None else np.nan,
        median_h2_other=float(np.median(h2[other])) if h2 is not None else np.nan,
        median_h2_confounded_hits=(
            float(np.median(h2[hits & confounded]))
            if h2 is not None and (hits & confounded).any()
            else np.nan
        ),
        seconds=seconds,
    )


def run_seed(
    seed: int, *, n_samples: int, n_genes: int, alpha: float = 0.05, **cohort_options: float
) -> tuple[list[MethodSummary], dict]:
    """Simulate one cohort and run the four methods on it; also return its settings."""
    cohort = confounded_cohort(seed, n_samples=n_samples, n_genes=n_genes, **cohort_options)
    expression = cohort.expression.to_numpy()
    trait = cohort.trait.to_numpy()
    names = list(cohort.expression.columns)

    t0 = time.perf_counter()
    eig = eigensystem_from_expression(expression)
    eig_seconds = time.perf_counter() - t0

    runs = {
        "SLR": lambda: slr_scan(expression, trait, gene_names=names),
        "LMM null-δ": lambda: lmm_scan(expression, trait, eigensystem=eig, gene_names=names),
        "LMM refit": lambda: lmm_scan(
            expression, trait, eigensystem=eig, delta="refit", gene_names=names
        ),
        "LMM leave-gene-out": lambda: lmm_scan(
            expression, trait, eigensystem=eig, leave_out="gene", gene_names=names
        ),
    }
    out = []
    for method in METHODS:
        t0 = time.perf_counter()
        result = runs[method]()
        seconds = time.perf_counter() - t0 + (eig_seconds if method != "SLR" else 0.0)
        out.append(summarise(result, cohort, method=method, seconds=seconds, alpha=alpha))
    return out, cohort.settings.to_dict()


def markdown_table(rows: pd.DataFrame) -> str:
    """A Markdown table of a summary frame (numbers rounded for reading)."""
    header = "| " + " | ".join(rows.columns) + " |"
    rule = "|" + "|".join("---" for _ in rows.columns) + "|"
    lines = [header, rule]
    for _, row in rows.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("–" if np.isnan(value) else f"{value:.2f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--n-samples", type=int, default=500)
    parser.add_argument("--n-genes", type=int, default=5000)
    parser.add_argument(
        "--trait-noise-r2",
        type=float,
        help="share of the trait that is measurement noise (default: the simulator's, 0.3)",
    )
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (threadpoolctl)")
    parser.add_argument("--json", help="also write the per-seed numbers to this JSON file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    rows, settings = [], []
    with threadpool_limits(limits=args.threads):
        for seed in args.seeds:
            options = {} if args.trait_noise_r2 is None else {"trait_noise_r2": args.trait_noise_r2}
            summaries, cohort_settings = run_seed(
                seed, n_samples=args.n_samples, n_genes=args.n_genes, **options
            )
            rows.extend(asdict(s) for s in summaries)
            settings.append(cohort_settings)
    elapsed = time.perf_counter() - started
    per_seed = pd.DataFrame(rows)
    mean = (
        per_seed.drop(columns="seed")
        .groupby("method", sort=False)
        .agg(
            lambda_gc=("lambda_gc", "mean"),
            lambda_gc_min=("lambda_gc", "min"),
            lambda_gc_max=("lambda_gc", "max"),
            hits_causal=("hits_causal", "mean"),
            hits_confounded=("hits_confounded", "mean"),
            hits_other=("hits_other", "mean"),
            median_h2_confounded=("median_h2_confounded", "mean"),
            median_h2_other=("median_h2_other", "mean"),
            median_h2_confounded_hits=("median_h2_confounded_hits", "mean"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    print(
        f"# Confounding benchmark: N={args.n_samples}, G={args.n_genes}, seeds={args.seeds}, "
        f"trait_noise_r2={settings[0]['trait_noise_r2']}, "
        f"BLAS threads={args.threads}, {elapsed:.0f} s, {platform.node() or 'host'}, "
        f"{os.cpu_count()} cores\n"
    )
    print("## Mean over seeds\n")
    print(markdown_table(mean))
    print("\n## Per seed\n")
    print(markdown_table(per_seed))
    if args.json:
        payload = {
            "settings": {
                "seeds": args.seeds,
                "n_samples": args.n_samples,
                "n_genes": args.n_genes,
                "threads": args.threads,
            },
            "cohorts": settings,
            "per_seed": rows,
            "seconds": elapsed,
        }
        write_text_atomic(args.json, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
