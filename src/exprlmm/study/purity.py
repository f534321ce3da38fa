"""Purity confounding: purity-associated genes and where they fall in a trait ranking.

Pure functions on tidy tables (no I/O). The tables are those of `exprlmm.assoc.slr_scan` /
`lmm_scan` (``gene beta se stat df pvalue padj ...``) and the GSEA tables of
`exprlmm.gsea.prerank`; the column meanings of the outputs are documented in ``docs/study.md``.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PURITY_SETS",
    "purity_associated_genes",
    "purity_gene_sets",
    "purity_positions",
    "purity_summary",
    "set_overlap",
]

#: Names of the two gene sets made of the purity-associated genes (split by direction).
PURITY_SETS = {"positive": "PURITY_POSITIVE", "negative": "PURITY_NEGATIVE"}


def purity_associated_genes(purity_scan: pd.DataFrame, alpha: float = 0.01) -> pd.DataFrame:
    r"""Genes whose expression is associated with purity at Bonferroni level ``alpha``.

    .. math:: p^{\mathrm{Bonf}}_k = \min(1, G\,p_k), \qquad
              \text{associated} \iff p^{\mathrm{Bonf}}_k < \alpha

    Parameters
    ----------
    purity_scan
        Per-gene regression of expression on purity (`exprlmm.assoc.slr_scan` with purity as
        the response and each gene as the predictor: ``gene beta se stat pvalue``).
    alpha
        Bonferroni threshold (Yao et al.: 0.01).

    Returns
    -------
    pandas.DataFrame
        ``gene beta se stat pvalue p_bonferroni purity_associated direction``; ``direction``
        is ``positive``/``negative`` (sign of ``beta``) for associated genes, empty otherwise.
    """
    out = purity_scan[["gene", "beta", "se", "stat", "pvalue"]].copy()
    out["p_bonferroni"] = np.minimum(1.0, out["pvalue"].to_numpy() * len(out))
    associated = out["p_bonferroni"].to_numpy() < alpha
    out["purity_associated"] = associated
    out["direction"] = np.where(
        associated, np.where(out["beta"].to_numpy() > 0, "positive", "negative"), ""
    )
    return out.reset_index(drop=True)


def purity_gene_sets(purity_genes: pd.DataFrame) -> dict[str, list[str]]:
    """The purity-associated genes as two gene sets, ``PURITY_POSITIVE`` / ``PURITY_NEGATIVE``."""
    sets = {}
    for direction, name in PURITY_SETS.items():
        genes = purity_genes.loc[purity_genes["direction"] == direction, "gene"].tolist()
        if genes:
            sets[name] = genes
    return sets


def _ranking_positions(scan: pd.DataFrame) -> pd.Series:
    """1-based position of each gene when sorted by decreasing ``stat`` (stable)."""
    order = np.argsort(-scan["stat"].to_numpy(), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return pd.Series(rank, index=scan["gene"].to_numpy())


def purity_positions(scan: pd.DataFrame, purity_genes: pd.DataFrame, model: str) -> pd.DataFrame:
    """Where the purity-associated genes fall along a trait ranking (paper Fig 1a–c).

    Returns ``model gene direction rank n_genes``: ``rank`` is the 1-based position in the
    ranking by decreasing signed ``stat`` (1 = most positively associated with the trait),
    over the genes of ``scan``; purity genes absent from ``scan`` are left out.
    """
    rank = _ranking_positions(scan)
    hits = purity_genes.loc[purity_genes["purity_associated"].astype(bool), ["gene", "direction"]]
    hits = hits[hits["gene"].isin(rank.index)]
    return pd.DataFrame(
        {
            "model": model,
            "gene": hits["gene"].to_numpy(),
            "direction": hits["direction"].to_numpy(),
            "rank": rank.loc[hits["gene"]].to_numpy(),
            "n_genes": len(rank),
        }
    ).sort_values("rank", kind="stable", ignore_index=True)


def purity_summary(
    scan: pd.DataFrame,
    purity_genes: Collection[str],
    model: str,
    *,
    top_n: int = 500,
    fdr: float = 0.05,
) -> dict[str, object]:
    r"""Overlap and rank enrichment of the purity-associated genes in one trait ranking.

    * share in the top: of the ``top_n`` genes with the smallest p-value (ties: larger
      ``|stat|`` first), the fraction that is purity-associated, against the expected
      fraction ``n_purity / G``;
    * rank test: Mann–Whitney U of the p-values of purity genes against the other genes;
      ``rank_auc`` = :math:`P(p_{\text{purity}} < p_{\text{other}}) + \tfrac12 P(=)`
      (0.5: no enrichment; 1: every purity gene ranks above every other gene);
    * overlap: genes with ``padj < fdr`` and, among them, the purity-associated ones.

    Returns
    -------
    dict
        ``model n_genes n_purity_genes top_n n_purity_in_top share_purity_in_top
        share_expected rank_auc rank_pvalue fdr n_trait_assoc n_overlap``.
    """
    genes = scan["gene"].to_numpy()
    is_purity = np.isin(genes, np.asarray(list(purity_genes), dtype=object))
    p = scan["pvalue"].to_numpy(dtype=np.float64)
    order = np.lexsort((-np.abs(scan["stat"].to_numpy(dtype=np.float64)), p))
    top = order[: min(top_n, len(order))]
    n_purity = int(is_purity.sum())
    if 0 < n_purity < len(p):
        test = stats.mannwhitneyu(p[~is_purity], p[is_purity], alternative="two-sided")
        auc = float(test.statistic) / (n_purity * (len(p) - n_purity))
        auc_p = float(test.pvalue)
    else:
        auc, auc_p = np.nan, np.nan
    associated = scan["padj"].to_numpy(dtype=np.float64) < fdr
    return {
        "model": model,
        "n_genes": len(p),
        "n_purity_genes": n_purity,
        "top_n": len(top),
        "n_purity_in_top": int(is_purity[top].sum()),
        "share_purity_in_top": float(is_purity[top].mean()) if len(top) else np.nan,
        "share_expected": n_purity / len(p) if len(p) else np.nan,
        "rank_auc": auc,
        "rank_pvalue": auc_p,
        "fdr": fdr,
        "n_trait_assoc": int(associated.sum()),
        "n_overlap": int((associated & is_purity).sum()),
    }


def _significant_sets(gsea: pd.DataFrame, set_fdr: float, direction: str) -> set[str]:
    sign = gsea["nes"].to_numpy() > 0 if direction == "positive" else gsea["nes"].to_numpy() < 0
    return set(gsea.loc[(gsea["fdr"].to_numpy() < set_fdr) & sign, "term"])


def set_overlap(
    purity_gsea: pd.DataFrame,
    trait_gsea: pd.DataFrame,
    model: str,
    *,
    set_fdr: float = 0.25,
    exclude: Collection[str] = tuple(PURITY_SETS.values()),
) -> pd.DataFrame:
    r"""Purity-associated gene sets vs trait-associated gene sets (paper Fig 1d/e).

    A set is associated when its GSEA q < ``set_fdr`` with NES of the given sign. Per
    direction: counts on each ranking, their intersection and the Jaccard index
    :math:`|A \cap B| / |A \cup B|` (NaN when both are empty). Sets in ``exclude`` (the purity
    sets themselves) are ignored.

    Returns
    -------
    pandas.DataFrame
        ``model direction n_purity_sets n_trait_sets n_overlap jaccard``.
    """
    rows = []
    for direction in ("positive", "negative"):
        a = _significant_sets(purity_gsea, set_fdr, direction) - set(exclude)
        b = _significant_sets(trait_gsea, set_fdr, direction) - set(exclude)
        union = a | b
        rows.append(
            {
                "model": model,
                "direction": direction,
                "n_purity_sets": len(a),
                "n_trait_sets": len(b),
                "n_overlap": len(a & b),
                "jaccard": len(a & b) / len(union) if union else np.nan,
            }
        )
    return pd.DataFrame(rows)
