"""Pre-ranked gene-set enrichment analysis (Broad-faithful statistics, fast null, tail p-values).

Entry point: `prerank`. Modules: `enrichment` (ES), `null` (fast-mode permutation null;
`null_torch` on a torch device), `stats` (NES, p, FDR, FWER; `stats_torch` on a torch device),
`multilevel` (tail p-values), `qvalue` (q without q = 0), `broad` + `javarandom`
(``mode="broad"``: GSEA 4.x's random stream).
"""

from exprlmm.gsea.engine import (
    COLUMNS,
    GseaResult,
    GseaSettings,
    prepare_ranking,
    prepare_sets,
    prerank,
    rename_columns,
)

__all__ = [
    "COLUMNS",
    "GseaResult",
    "GseaSettings",
    "prepare_ranking",
    "prepare_sets",
    "prerank",
    "rename_columns",
]
