"""Pre-ranked GSEA: ranking + gene sets in, tidy result table out.

Pure: no file I/O, no printing. The CLI (`exprlmm gsea`) reads inputs and writes outputs.

Pipeline
--------
1. Rank: drop missing scores, stable descending sort (ties keep input order).
2. Sets: optionally remove a gene list from every set not exempted; keep genes present in the
   ranking; keep sets with ``min_size ≤ size ≤ max_size``.
3. Observed ES (weighted KS, exponent ``weight``) in O(k) per set; leading edge.
4. Null by gene-set permutation: fast mode (shared per size, nested draws, chunked; see
   `exprlmm.gsea.null`) or broad mode (GSEA 4.x's java.util.Random stream, one set after the
   other; see `exprlmm.gsea.broad`).
5. NES, nominal p, FDR q, FWER as GSEA 4.x (`exprlmm.gsea.stats`); BH-adjusted p.
6. Tail p-values by adaptive multilevel splitting (`exprlmm.gsea.multilevel`) and a q-value
   from them; optional LOESS extrapolation of q from NES (`exprlmm.gsea.qvalue`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from exprlmm.errors import UserInputError
from exprlmm.gsea.enrichment import enrichment_scores, leading_edge
from exprlmm.gsea.null import CHUNK, null_es_chunk
from exprlmm.gsea.stats import bh_adjust, permutation_stats

__all__ = [
    "COLUMNS",
    "GseaResult",
    "GseaSettings",
    "PreparedSets",
    "RankedList",
    "prepare_ranking",
    "prepare_sets",
    "prerank",
    "rename_columns",
]

log = logging.getLogger(__name__)

#: Output columns (exprlmm style), in order.
COLUMNS = [
    "term",
    "size",
    "es",
    "nes",
    "pvalue",
    "pvalue_tail",
    "log2err_tail",
    "fdr",
    "fdr_tail",
    "fwer",
    "padj",
    "rank_at_es",
    "tag_pct",
    "list_pct",
    "signal",
    "leading_edge",
]

_STYLE_GSEAPY = {
    "term": "Term",
    "es": "ES",
    "nes": "NES",
    "pvalue": "NOM p-val",
    "fdr": "FDR q-val",
    "fwer": "FWER p-val",
    "tag_pct": "Tag %",
    "list_pct": "Gene %",
    "leading_edge": "Lead_genes",
}
_STYLE_FGSEA = {
    "term": "pathway",
    "es": "ES",
    "nes": "NES",
    "pvalue_tail": "pval",
    "log2err_tail": "log2err",
    "leading_edge": "leadingEdge",
}


@dataclass(frozen=True)
class GseaSettings:
    """Settings of one pre-ranked GSEA run (recorded in the run record).

    Attributes
    ----------
    permutations
        Gene-set permutations (GSEA's ``-nperm``).
    seed
        Random seed (fast mode: numpy; broad mode: java.util.Random).
    weight
        Exponent p of the weighted KS statistic (GSEA ``-scoring_scheme``: 0 classic,
        1 weighted, 2 weighted_p2).
    min_size, max_size
        Size limits, counted over genes present in the ranking.
    mode
        ``"fast"`` (shared, vectorised null) or ``"broad"`` (GSEA 4.x random stream).
    tail
        ``"multilevel"`` for adaptive-multilevel tail p-values, ``"none"`` to skip.
    tail_sample_size, tail_eps, tail_moves
        Multilevel sample size (fgsea's sampleSize), smallest p-value estimated (fgsea's eps),
        and MCMC effort per level (accepted swaps per sample, in units of k/2).
    q_extrapolation
        ``"loess"``: also report ``fdr_loess``, the paper's LOESS extrapolation of q = 0.
    memory_limit_mb
        Keep the permutation null in memory up to this size; above it the null is
        regenerated chunk by chunk (same numbers, bounded memory). With ``backend="torch"`` off
        CUDA it also bounds the null's working memory (capped at 64 MiB; on CUDA: a quarter of
        the free device memory).
    backend
        Array library for the fast-mode null: ``"numpy"`` (default) or ``"torch"`` (the null
        is drawn, its ES computed and NES, p, FDR and FWER counted on ``device``; observed ES,
        the per-set finish and the multilevel tails stay on the host). ``"cupy"`` is not
        supported for GSEA.
    device
        torch device for ``backend="torch"`` (default ``"cuda"``).
    """

    permutations: int = 1000
    seed: int = 0
    weight: float = 1.0
    min_size: int = 15
    max_size: int = 500
    mode: Literal["fast", "broad"] = "fast"
    tail: Literal["multilevel", "none"] = "multilevel"
    tail_sample_size: int = 101
    tail_eps: float = 1e-10
    tail_moves: float = 1.0
    q_extrapolation: Literal["none", "loess"] = "none"
    memory_limit_mb: float = 512.0
    backend: Literal["numpy", "torch", "cupy"] = "numpy"
    device: str | None = None

    def __post_init__(self) -> None:
        if self.permutations < 1:
            raise UserInputError("permutations must be at least 1")
        if not (self.weight >= 0 and math.isfinite(self.weight)):
            raise UserInputError(f"weight must be a finite number ≥ 0, got {self.weight}")
        if self.mode == "broad" and self.weight not in (0, 1, 2):
            raise UserInputError("--mode broad supports weight 0, 1 or 2 (GSEA's schemes)")
        if not 1 <= self.min_size <= self.max_size:
            raise UserInputError(
                f"need 1 ≤ min_size ≤ max_size, got {self.min_size} and {self.max_size}"
            )
        if self.mode not in ("fast", "broad"):
            raise UserInputError(f"mode must be 'fast' or 'broad', got {self.mode!r}")
        if self.backend not in ("numpy", "torch", "cupy"):
            raise UserInputError(f"--backend {self.backend!r}: choose one of numpy, torch, cupy")
        if self.backend == "cupy":
            raise UserInputError(
                "--backend cupy is not supported for gsea yet; use --backend torch or numpy"
            )
        if self.backend != "numpy" and self.mode == "broad":
            raise UserInputError(
                f"--mode broad runs on numpy only (GSEA 4.x's random stream); "
                f"drop --backend {self.backend} or use --mode fast"
            )
        if self.device is not None and self.backend == "numpy":
            raise UserInputError("--device applies to --backend torch only")


@dataclass(frozen=True)
class RankedList:
    """Genes sorted by decreasing score (stable: ties keep input order)."""

    genes: NDArray[np.str_]
    scores: NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.genes.size)

    def weights(self, p: float) -> NDArray[np.float64]:
        """|score|^p; non-finite scores get weight 0.01 as in GSEA."""
        a = np.abs(self.scores)
        a = np.where(np.isfinite(a), a, 0.01)
        return np.ones_like(a) if p == 0 else a**p


@dataclass(frozen=True)
class PreparedSets:
    """Gene sets that pass the filters, as sorted hit positions in the ranked list."""

    names: list[str]
    positions: list[NDArray[np.int64]]
    n_original: int
    n_removed_genes: int
    member_order: list[NDArray[np.int64]] = field(default_factory=list)

    @property
    def sizes(self) -> NDArray[np.int64]:
        return np.array([p.size for p in self.positions], dtype=np.int64)


@dataclass(frozen=True)
class GseaResult:
    """Result of `prerank`: the tidy table plus what plots and the run record need."""

    table: pd.DataFrame
    settings: GseaSettings
    ranking: RankedList
    hits: dict[str, NDArray[np.int64]]
    record: dict[str, Any] = field(default_factory=dict)


def prepare_ranking(scores: pd.Series | Mapping[str, float]) -> RankedList:
    """Sort a ``gene -> score`` mapping decreasingly (stable), dropping missing scores."""
    s = pd.Series(scores, dtype=float) if not isinstance(scores, pd.Series) else scores
    s = s.astype(float)
    if s.index.has_duplicates:
        dup = s.index[s.index.duplicated()][0]
        raise UserInputError(f"ranking: gene {dup!r} appears more than once")
    s = s[~s.isna()]
    if s.size < 2:
        raise UserInputError("ranking: fewer than 2 genes with a score")
    values = s.to_numpy(dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    return RankedList(genes=s.index.to_numpy(dtype=str)[order], scores=values[order])


def prepare_sets(
    ranking: RankedList,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_size: int,
    max_size: int,
    remove_genes: Collection[str] = (),
    exempt_sets: Collection[str] = (),
) -> PreparedSets:
    """Map sets onto the ranking; drop removed genes; filter by size (over present genes)."""
    index = {g: i for i, g in enumerate(ranking.genes.tolist())}
    remove = set(remove_genes)
    exempt = set(exempt_sets)
    names: list[str] = []
    positions: list[NDArray[np.int64]] = []
    in_order: list[NDArray[np.int64]] = []
    n_removed = 0
    any_overlap = False
    for name, genes in gene_sets.items():
        members = list(dict.fromkeys(genes))
        if remove and name not in exempt:
            kept = [g for g in members if g not in remove]
            n_removed += len(members) - len(kept)
            members = kept
        listed = np.array([index[g] for g in members if g in index], dtype=np.int64)
        pos = np.sort(listed)
        any_overlap |= pos.size > 0
        if min_size <= pos.size <= max_size:
            names.append(str(name))
            positions.append(pos)
            in_order.append(listed)
    if not any_overlap:
        raise UserInputError(
            "no gene of any gene set is in the ranking; check that both use the same gene "
            "identifiers (e.g. HGNC symbols)"
        )
    if not names:
        raise UserInputError(
            f"no gene set has between {min_size} and {max_size} genes in the ranking; "
            "lower --min-size or raise --max-size"
        )
    return PreparedSets(names, positions, len(gene_sets), n_removed, in_order)


def _fast_null(
    weights: NDArray[np.float64], sizes: NDArray[np.int64], settings: GseaSettings
) -> tuple[NDArray[np.intp], Any, Any]:
    """Row of each set, a re-iterable chunk source for the fast-mode null, and its device.

    With ``settings.backend == "torch"`` the weights move to the device here (a missing torch
    or GPU is a `UserInputError` naming the ``exprlmm[gpu]`` extra) and the chunks are torch
    tensors left on that device by `exprlmm.gsea.null_torch.null_es_torch`; otherwise numpy
    arrays from `exprlmm.gsea.null.null_es_chunk` and the device is None.
    """
    uniq, row_of_set = np.unique(sizes, return_inverse=True)
    n_perm = settings.permutations
    width = min(CHUNK, n_perm)
    bounds = [(c, min(width, n_perm - c * width)) for c in range(math.ceil(n_perm / width))]
    in_memory = uniq.size * n_perm * 4 <= settings.memory_limit_mb * 2**20
    cache: list[Any] = []

    def numpy_chunks() -> Iterator[NDArray[np.float32]]:
        for c, m in bounds:
            yield null_es_chunk(weights, uniq, seed=settings.seed, chunk=c, n_perm=m)

    source = numpy_chunks
    device = None
    if settings.backend == "torch":
        from exprlmm._xp import to_backend
        from exprlmm.gsea.null_torch import null_es_torch, torch_memory_budget

        w_dev = to_backend(weights, "torch", device_name=settings.device)
        device = w_dev.device
        budget = torch_memory_budget(device, settings.memory_limit_mb)

        def torch_chunks() -> Iterator[Any]:
            yield from null_es_torch(
                w_dev, uniq, seed=settings.seed, n_perm=n_perm, budget_bytes=budget, to_host=False
            )

        source = torch_chunks

    def gen() -> Iterator[Any]:
        if cache:
            yield from cache
            return
        for chunk in source():
            if in_memory:
                cache.append(chunk)
            yield chunk

    return row_of_set.astype(np.intp), gen, device


def prerank(
    scores: pd.Series | Mapping[str, float],
    gene_sets: Mapping[str, Sequence[str]],
    settings: GseaSettings | None = None,
    *,
    remove_genes: Collection[str] = (),
    exempt_sets: Collection[str] = (),
) -> GseaResult:
    """Pre-ranked GSEA of ``gene_sets`` on the ranking ``scores`` (gene -> score).

    Parameters
    ----------
    scores
        Gene-level statistic; genes are ranked by decreasing score.
    gene_sets
        ``{name: genes}`` (e.g. from `exprlmm.io.gmt.read_gmt`); processed in this order.
    settings
        `GseaSettings`; defaults if omitted.
    remove_genes, exempt_sets
        Genes removed from every set whose name is not in ``exempt_sets`` before testing
        (e.g. histone genes from all sets but the histone set).

    Returns
    -------
    GseaResult
        ``table`` has the columns in `COLUMNS` (one row per tested set, sorted by
        ``pvalue_tail`` then decreasing |NES|).
    """
    st = settings or GseaSettings()
    rl = prepare_ranking(scores)
    sets = prepare_sets(
        rl,
        gene_sets,
        min_size=st.min_size,
        max_size=st.max_size,
        remove_genes=remove_genes,
        exempt_sets=exempt_sets,
    )
    n = rl.n
    sizes = sets.sizes
    weights = rl.weights(st.weight)

    if st.mode == "broad":
        from exprlmm.gsea.broad import broad_null_and_es

        es, rank_at_es, null = broad_null_and_es(rl, sets, st)
        row_of_set = np.arange(len(sets.names), dtype=np.intp)
        width = min(CHUNK, st.permutations)

        def chunks() -> Iterator[NDArray[np.float32]]:
            for c0 in range(0, st.permutations, width):
                yield null[:, c0 : c0 + width]

        pstats = permutation_stats(es, row_of_set, chunks, shift=False)
    else:
        row_of_set, chunks, device = _fast_null(weights, sizes, st)  # checks the backend first
        es = np.empty(len(sets.names))
        rank_at_es = np.empty(len(sets.names), dtype=np.int64)
        for k in np.unique(sizes):  # one matrix of hit positions per set size
            same = np.flatnonzero(sizes == k)
            r = enrichment_scores(np.stack([sets.positions[i] for i in same]), weights, n)
            es[same] = r.es
            rank_at_es[same] = r.rank_at_es
        if device is None:
            pstats = permutation_stats(es, row_of_set, chunks, shift=True)
        else:
            from exprlmm.gsea.stats_torch import permutation_stats_torch

            pstats = permutation_stats_torch(es, row_of_set, chunks, shift=True, device=device)

    rows = []
    for i, name in enumerate(sets.names):
        core, tags, list_frac, signal = leading_edge(
            sets.positions[i], float(es[i]), int(rank_at_es[i]), n
        )
        rows.append(
            {
                "term": name,
                "size": int(sizes[i]),
                "es": float(es[i]),
                "rank_at_es": int(rank_at_es[i]),
                "tag_pct": tags,
                "list_pct": list_frac,
                "signal": signal,
                "leading_edge": ";".join(rl.genes[core].tolist()),
            }
        )
    table = pd.DataFrame(rows)
    table["nes"] = pstats.nes
    table["pvalue"] = pstats.pvalue
    table["fdr"] = pstats.fdr
    table["fwer"] = pstats.fwer
    table["padj"] = bh_adjust(pstats.pvalue)

    table["pvalue_tail"] = table["pvalue"]
    table["log2err_tail"] = np.nan
    if st.tail == "multilevel":
        from exprlmm.gsea.multilevel import tail_pvalues

        tp = tail_pvalues(
            weights,
            es,
            sizes,
            n_perm=pstats.n_perm,
            n_beyond=pstats.n_null_beyond,
            n_same_sign=pstats.n_null_same_sign,
            sample_size=st.tail_sample_size,
            eps=st.tail_eps,
            seed=st.seed,
            moves=st.tail_moves,
        )
        table["pvalue_tail"] = tp.pvalue
        table["log2err_tail"] = tp.log2err
    from exprlmm.gsea.qvalue import loess_extrapolate_q, q_from_tails

    table["fdr_tail"] = q_from_tails(table["pvalue_tail"].to_numpy(), table["nes"].to_numpy())
    columns = list(COLUMNS)
    if st.q_extrapolation == "loess":
        table["fdr_loess"] = loess_extrapolate_q(table["fdr"].to_numpy(), table["nes"].to_numpy())
        columns.insert(columns.index("fdr_tail") + 1, "fdr_loess")
    table = table[columns]
    order = np.lexsort((-np.abs(table["nes"].to_numpy()), table["pvalue_tail"].to_numpy()))
    table = table.iloc[order].reset_index(drop=True)

    record = {
        "settings": asdict(st),
        "n_genes": n,
        "n_gene_sets_input": sets.n_original,
        "n_gene_sets_tested": len(sets.names),
        "n_distinct_sizes": int(np.unique(sizes).size),
        "n_gene_memberships_removed": sets.n_removed_genes,
        "n_permutations_done": pstats.n_perm,
    }
    hits = dict(zip(sets.names, sets.positions, strict=True))
    return GseaResult(table=table, settings=st, ranking=rl, hits=hits, record=record)


def rename_columns(
    table: pd.DataFrame, style: Literal["exprlmm", "gseapy", "fgsea"]
) -> pd.DataFrame:
    """Rename result columns to gseapy's or fgsea's names (others keep exprlmm names)."""
    if style == "exprlmm":
        return table
    mapping = _STYLE_GSEAPY if style == "gseapy" else _STYLE_FGSEA
    return table.rename(columns=mapping)
