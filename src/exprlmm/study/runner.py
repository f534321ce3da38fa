"""Run a study: cohorts → trait → purity genes → SLR / LMM / LMM without purity genes → GSEA →
purity summaries → subsamples → cross-cohort tables, figures and the HTML report.

Every step writes its outputs atomically, then a marker ``cohorts/<c>/.steps/<step>.json``
holding the SHA-256 of everything the step depends on (input file contents, settings, the
markers of the steps it reads). A rerun skips a step whose marker matches and whose outputs
exist, so an interrupted run restarts where it stopped. Steps read their inputs back from the
files of earlier steps (never from memory), and every random step draws from a seed derived
from the study seed, the cohort and the step, so a resumed run gives the same files as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from exprlmm import __version__
from exprlmm._xp import to_backend
from exprlmm.assoc.slr import slr_scan
from exprlmm.errors import UserInputError
from exprlmm.gsea.engine import prerank
from exprlmm.io.atomic import write_text_atomic
from exprlmm.io.cohort import Cohort
from exprlmm.io.gmt import load_gene_sets, removal_genes
from exprlmm.io.record import environment, file_sha256, write_run_record
from exprlmm.io.samples import read_sample_sheet
from exprlmm.io.seg import read_seg
from exprlmm.io.tables import write_table
from exprlmm.pipeline import (
    AssocData,
    AssocSettings,
    kinship_eigensystem,
    kinship_mask,
    lmm_options,
    load_assoc_data,
    run_lmm_scan,
    run_slr_scan,
)
from exprlmm.scores.icna import IcnaSettings, icna_scores, is_tcga_barcode, is_tcga_tumor
from exprlmm.study.config import CohortConfig, StudyConfig, to_toml
from exprlmm.study.purity import (
    purity_associated_genes,
    purity_gene_sets,
    purity_positions,
    purity_summary,
    set_overlap,
)

log = logging.getLogger("exprlmm.study")

__all__ = ["StudyResult", "run_study"]

#: Fewest matched samples a cohort may have (intercept, gene, trait and a few residual df).
MIN_SAMPLES = 10


@dataclass(frozen=True)
class StudyResult:
    """What `run_study` did.

    Attributes
    ----------
    output
        The output folder.
    report
        The HTML report (None when not asked for).
    steps_run, steps_skipped
        ``"<cohort>/<step>"`` names of the steps computed and of those found up to date.
    timings
        Seconds per step that ran.
    """

    output: Path
    report: Path | None
    steps_run: tuple[str, ...]
    steps_skipped: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def derived_seed(seed: int, *parts: str | int) -> int:
    """The seed of one random step, from the study seed and the step's identity.

    ``numpy.random.default_rng(derived_seed(...))`` reproduces the step's draws.
    """
    words = [zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence([seed, *words]).generate_state(1, np.uint64)[0] >> 1)


class _Steps:
    """Content-hashed, resumable steps."""

    def __init__(self, force: bool, bar: Any) -> None:
        self.force = force
        self.bar = bar
        self.run: list[str] = []
        self.skipped: list[str] = []
        self.timings: dict[str, float] = {}

    def __call__(
        self,
        folder: Path,
        name: str,
        key: dict[str, Any],
        outputs: list[Path],
        compute: Callable[[], None],
    ) -> str:
        """Run ``compute`` unless the step's marker matches ``key``; return the step digest."""
        label = f"{folder.name}/{name}"
        digest = _digest(key)
        marker = folder / ".steps" / f"{name}.json"
        self.bar.set_postfix_str(label)
        if not self.pending(folder, name, key, outputs):
            log.info("skip %s (up to date)", label)
            self.skipped.append(label)
            self.bar.update(1)
            return digest
        t0 = time.perf_counter()
        log.info("run %s", label)
        compute()
        seconds = time.perf_counter() - t0
        info = {"key": digest, "outputs": [p.name for p in outputs], "seconds": seconds}
        write_text_atomic(marker, json.dumps(info, indent=1) + "\n")
        log.info("done %s in %.2f s", label, seconds)
        self.run.append(label)
        self.timings[label] = seconds
        self.bar.update(1)
        return digest

    def pending(self, folder: Path, name: str, key: dict[str, Any], outputs: list[Path]) -> bool:
        """Whether the step must run: ``--force``, outputs missing, or its marker differs."""
        marker = folder / ".steps" / f"{name}.json"
        if self.force or not marker.exists() or not all(p.exists() for p in outputs):
            return True
        try:
            done = json.loads(marker.read_text(encoding="utf-8")).get("key")
        except (OSError, json.JSONDecodeError):
            return True
        return done != _digest(key)


class _Files:
    """SHA-256 of input files, each computed once per run."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def __call__(self, path: str | None) -> str | None:
        if path is None:
            return None
        if path not in self._cache:
            self._cache[path] = file_sha256(path)
        return self._cache[path]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=True)


def _icna_table(cohort: CohortConfig, options: dict[str, Any]) -> pd.DataFrame:
    """ICNA per tumour sample from the cohort's .seg (TCGA: tumour samples only by default)."""
    segments = read_seg(cohort.seg, value_column=options.get("value_column"))
    ids = segments["sample"].unique()
    tumour_only = options.get("tumor_only")
    if tumour_only is None:
        tumour_only = bool(len(ids)) and bool(is_tcga_barcode(ids).all())
    if tumour_only:
        segments = segments[segments["sample"].isin(ids[is_tcga_tumor(ids)])]
    keys = ("value", "min_abs_change", "exclude_chromosomes", "fga_threshold")
    settings = IcnaSettings(**{k: options[k] for k in keys if k in options})
    scores = icna_scores(segments, **settings.as_dict())
    return scores.reset_index()


#: Loaded cohorts kept in memory up to this many bytes of expression (the most recent one
#: always): a study of small cohorts reads each file once, one of large cohorts stays bounded.
COHORT_CACHE_BYTES = 1 << 30


class _Cohorts:
    """Loads cohorts on demand, keeping recent ones in memory (`COHORT_CACHE_BYTES`)."""

    def __init__(self, config: StudyConfig) -> None:
        self.config = config
        self._loaded: dict[str, AssocData] = {}

    def settings(self, cohort: CohortConfig, scores: str | None) -> AssocSettings:
        options = dict(self.config.assoc_options(cohort))
        if "covariates" in options:
            options["covariates"] = tuple(options["covariates"])
        return AssocSettings(
            expression=cohort.expression,
            samples=cohort.samples,
            trait=self.config.trait,
            scores=scores,
            threads=self.config.threads,
            **options,
        )

    def load(self, cohort: CohortConfig, scores: str | None) -> AssocData:
        if cohort.name in self._loaded:
            return self._loaded[cohort.name]
        settings = self.settings(cohort, scores)
        where = f"cohort {cohort.name!r}"
        sheet_columns = set(
            read_sample_sheet(cohort.samples, sample_column=settings.sample_column).columns
        )
        if cohort.purity_column not in sheet_columns:
            raise UserInputError(
                f"{where}: purity column {cohort.purity_column!r} (key 'purity_column') is not in "
                f"{cohort.samples}"
            )
        try:
            data = load_assoc_data(settings, also_required=(cohort.purity_column,))
        except UserInputError as err:
            raise UserInputError(f"{where}: {err}") from None
        n = data.cohort.expression.shape[0]
        if n < MIN_SAMPLES:
            raise UserInputError(
                f"{where}: only {n} samples with expression, trait and purity after matching "
                f"(need ≥ {MIN_SAMPLES}); check the sample IDs of {cohort.expression}"
            )
        self._loaded[cohort.name] = data
        while len(self._loaded) > 1 and self._bytes() > COHORT_CACHE_BYTES:
            del self._loaded[next(iter(self._loaded))]  # the oldest first
        return data

    def _bytes(self) -> int:
        return sum(8 * d.cohort.expression.size for d in self._loaded.values())  # float64


def _scan(
    model: str,
    expression: pd.DataFrame,
    trait: np.ndarray,
    covariates: np.ndarray | None,
    settings: AssocSettings,
    kinship_genes: np.ndarray | None,
    client: Any = None,
) -> pd.DataFrame:
    """One model's scan on an in-memory cohort (LMM: K from the genes in ``kinship_genes``).

    With a dask ``client`` the gene chunks run on the cluster (`scan_distributed`: K's
    eigensystem and the null model here, the chunks on the workers; same table).
    """
    genes = list(expression.columns)
    backend = "numpy" if client is not None else settings.backend
    values = to_backend(expression.to_numpy(dtype=np.float64), backend, device_name=settings.device)
    mask = np.ones(len(genes), dtype=bool) if kinship_genes is None else kinship_genes
    try:
        if client is not None:
            from exprlmm.assoc.distributed import scan_distributed

            kind = "slr" if model == "slr" else "lmm"
            return scan_distributed(
                values,
                trait,
                client=client,
                models=(kind,),
                covariates=covariates,
                eigensystem=None if kind == "slr" else kinship_eigensystem(settings, values, mask),
                kinship_genes=mask,
                gene_names=genes,
                **lmm_options(settings),
            )[kind]
        if model == "slr":
            return run_slr_scan(settings, values, trait, covariates, genes)
        eig = kinship_eigensystem(settings, values, mask)
        return run_lmm_scan(settings, values, trait, covariates, genes, mask, eig)
    except ValueError as err:
        if isinstance(err, UserInputError):
            raise
        raise UserInputError(str(err)) from err


def _gsea_table(
    scores: pd.Series,
    sets: dict[str, list[str]],
    settings,
    removal: tuple[Any, Any],
    *,
    any_size: bool = False,
) -> pd.DataFrame:
    """GSEA table of ``sets`` on ``scores``, removing ``removal = (genes, exempt sets)``.

    ``any_size``: test every set whatever its size (the purity sets and the sets tracked in
    subsamples are explicit choices); otherwise the settings' min/max size apply.
    """
    if any_size:
        settings = dataclasses.replace(settings, min_size=1, max_size=max(1, len(scores)))
    remove, exempt = removal
    return prerank(scores, sets, settings, remove_genes=remove, exempt_sets=exempt).table


def _ranking_gsea(
    job: tuple[pd.Series, dict[str, list[str]] | None],
    *,
    sets: dict[str, list[str]],
    settings,
    removal: tuple[Any, Any],
) -> list[pd.DataFrame]:
    """GSEA of one ranking ``job = (scores, purity sets or None)``: the study's collections,
    then the purity sets at any size (a task of its own on a cluster)."""
    scores, purity_sets = job
    tables = [_gsea_table(scores, sets, settings, removal)]
    if purity_sets is not None:
        tables.append(_gsea_table(scores, purity_sets, settings, removal, any_size=True))
    return tables


def _subsample_replicate(
    item: tuple[int, int, int],
    *,
    expression: np.ndarray,
    genes: list[str],
    trait: np.ndarray,
    covariates: np.ndarray | None,
    settings: AssocSettings,
    tracked: dict[str, list[str]],
    gsea_settings,
    removal: tuple[Any, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One random subset ``item = (size, repeat, seed)``: SLR vs LMM Spearman, tracked NES.

    A pure function of its arguments (a task of its own on a cluster): the subset is the
    sorted ``size`` rows (samples × ``genes`` matrix ``expression``) drawn without
    replacement by ``default_rng(seed)``; genes constant in the subset are dropped; both
    scans and the GSEA of ``tracked`` run on the subset. (A numpy matrix, not a DataFrame:
    dask serialises a DataFrame column by column, 11 s for 20,000 genes.)
    """
    size, repeat, seed = item
    rows = np.sort(np.random.default_rng(seed).choice(len(trait), size=size, replace=False))
    subset = expression[rows]
    varies = np.ptp(subset, axis=0) > 0
    expr = pd.DataFrame(subset[:, varies], columns=np.asarray(genes, dtype=object)[varies])
    cov = None if covariates is None else covariates[rows]
    scans = {m: _scan(m, expr, trait[rows], cov, settings, None) for m in ("slr", "lmm")}
    rho = stats.spearmanr(scans["slr"]["stat"], scans["lmm"]["stat"]).statistic
    nes = []
    for m, scan in scans.items():
        scores = pd.Series(scan["stat"].to_numpy(), index=scan["gene"].astype(str))
        table = _gsea_table(scores, tracked, gsea_settings, removal, any_size=True)
        nes.append(
            table[["term", "nes", "pvalue", "fdr"]].assign(size=size, repeat=repeat, model=m)
        )
    similarity = {"size": size, "repeat": repeat, "seed": seed, "spearman": rho}
    return similarity, pd.concat(nes, ignore_index=True)


class _Study:
    def __init__(self, config: StudyConfig, client: Any = None) -> None:
        self.config = config
        self.client = client
        self.out = Path(config.output)
        self.files = _Files()
        self.cohorts = _Cohorts(config)
        self.sets = load_gene_sets(config.gsea.gene_sets)
        self.removal = removal_genes(config.gsea.remove_genes)
        self._prepared: dict[str, tuple[str | None, str]] = {}

    # ---------------------------------------------------------------- per-cohort steps
    def _trait(self, c: CohortConfig, folder: Path, steps: _Steps) -> tuple[str | None, str]:
        """ICNA from .seg (a step) or the given scores; returns (scores path, digest)."""
        if c.seg is None:
            return c.scores, _digest({"scores": self.files(c.scores)})
        target = folder / "trait.tsv"
        options = self.config.icna_options(c)
        key = {"step": "trait", "seg": self.files(c.seg), "icna": options, "v": __version__}
        digest = steps(
            folder, "trait", key, [target], lambda: write_table(_icna_table(c, options), target)
        )
        return str(target), digest

    def _data_key(self, c: CohortConfig, trait_digest: str) -> dict[str, Any]:
        return {
            "expression": self.files(c.expression),
            "samples": self.files(c.samples),
            "trait": trait_digest,
            "trait_column": self.config.trait,
            "purity_column": c.purity_column,
            "assoc": self.config.assoc_options(c),
            "version": __version__,
        }

    def prepare(self, c: CohortConfig, steps: _Steps) -> None:
        """The trait step, then load and check the cohort (before any heavy step)."""
        folder = self.out / "cohorts" / c.name
        scores, trait_digest = self._trait(c, folder, steps)
        self._prepared[c.name] = (scores, trait_digest)
        loaded = self.cohorts.load(c, scores).cohort
        n = loaded.expression.shape[0]
        members = {g for genes in self.sets.values() for g in genes}
        if not loaded.expression.columns.isin(list(members)).any():
            raise UserInputError(
                f"cohort {c.name!r}: no gene of the [gsea] gene_sets is in {c.expression}; "
                "use gene sets with the same gene identifiers (e.g. HGNC symbols)"
            )
        sub = self.config.subsample
        if self._subsampled(c) and max(sub.sizes) > n:
            raise UserInputError(
                f"cohort {c.name!r}: [subsample] sizes has {max(sub.sizes)} but the cohort has "
                f"{n} matched samples"
            )

    def cohort(self, c: CohortConfig, steps: _Steps) -> None:
        """Every step of one cohort (after `prepare`)."""
        scores, trait_digest = self._prepared[c.name]
        run = _CohortSteps(self, c, steps, scores, self._data_key(c, trait_digest))
        run.purity()
        run.scans()
        run.gsea()
        run.summary()
        if self._subsampled(c):
            run.subsample()

    def _subsampled(self, c: CohortConfig) -> bool:
        sub = self.config.subsample
        return bool(sub.sizes) and (not sub.cohorts or c.name in sub.cohorts)

    # ---------------------------------------------------------------- cross-cohort
    def summary(self) -> None:
        """Stack the per-cohort tables into ``summary/`` (with a ``cohort`` column)."""
        stacks = {
            "purity_summary.tsv": "purity_summary.tsv",
            "purity_gsea.tsv": "purity_gsea.tsv",
            "set_overlap.tsv": "set_overlap.tsv",
            "subsample_similarity.tsv": "subsample_similarity.tsv",
            "subsample_gsea.tsv": "subsample_gsea.tsv",
        }
        for name, source in stacks.items():
            frames = []
            for c in self.config.cohorts:
                path = self.out / "cohorts" / c.name / source
                if path.exists():
                    frames.append(_read(path).assign(cohort=c.name))
            if frames:
                table = pd.concat(frames, ignore_index=True)
                table = table[["cohort", *[x for x in table.columns if x != "cohort"]]]
                write_table(table, self.out / "summary" / name)
        nes = []
        for c in self.config.cohorts:
            for model in (*self.config.models, "purity"):
                path = self.out / "cohorts" / c.name / f"gsea_{model}.tsv"
                table = _read(path)[["term", "nes", "fdr"]]
                nes.append(table.assign(cohort=c.name, model=model))
        frame = pd.concat(nes, ignore_index=True)[["cohort", "model", "term", "nes", "fdr"]]
        write_table(frame, self.out / "summary" / "nes.tsv")


class _CohortSteps:
    """The steps of one cohort; each reads what earlier steps wrote (see the module doc)."""

    def __init__(
        self,
        study: _Study,
        cohort: CohortConfig,
        steps: _Steps,
        scores: str | None,
        data_key: dict[str, Any],
    ) -> None:
        self.study = study
        self.cfg = study.config
        self.c = cohort
        self.steps = steps
        self.scores = scores
        self.data_key = data_key
        self.settings = study.cohorts.settings(cohort, scores)
        self.folder = study.out / "cohorts" / cohort.name
        self.purity_path = self.folder / "purity_genes.tsv"
        self.digests: dict[str, str] = {}
        gene_sets = [study.files(s) if Path(s).exists() else s for s in self.cfg.gsea.gene_sets]
        self.gsea_key = {
            "gene_sets": gene_sets,
            "remove_genes": self.cfg.gsea.remove_genes,
            "settings": dict(self.cfg.gsea.settings),
        }

    def _data(self) -> tuple[Cohort, np.ndarray, np.ndarray | None]:
        """The loaded cohort, the trait and the covariate matrix."""
        data = self.study.cohorts.load(self.c, self.scores)
        return data.cohort, data.trait, data.covariates

    def _step(self, name: str, key: dict[str, Any], outputs: list[Path], compute) -> None:
        self.digests[name] = self.steps(self.folder, name, key, outputs, compute)

    def _tasks_on_cluster(
        self,
        fn: Callable[..., Any],
        plans: list[tuple[str, dict[str, Any], list[Path], Callable[[], list[Any]]]],
        shared: Callable[[], dict[str, Any]],
    ) -> dict[str, list[Any]]:
        """Run ``fn(item, **shared())`` for every item of every pending step on the cluster.

        ``plans`` holds ``(step, key, outputs, items)`` per step. All tasks are submitted at
        once; returns ``{step: results in item order}`` (empty without a cluster, or when
        every step is up to date), for the steps to write.
        """
        if self.study.client is None:
            return {}
        todo = [
            (step, item)
            for step, key, outputs, items in plans
            if self.steps.pending(self.folder, step, key, outputs)
            for item in items()
        ]
        if not todo:
            return {}
        from exprlmm.assoc.distributed import map_tasks

        results = map_tasks(fn, [item for _, item in todo], self.study.client, shared=shared())
        done: dict[str, list[Any]] = {}
        for (step, _), result in zip(todo, results, strict=True):
            done.setdefault(step, []).append(result)
        return done

    def _purity_genes(self) -> pd.DataFrame:
        return _read(self.purity_path)

    def purity(self) -> None:
        """Expression ~ purity for every gene; Bonferroni-flagged purity genes."""

        def compute() -> None:
            loaded, _, _ = self._data()
            purity = loaded.samples[self.c.purity_column].to_numpy(dtype=np.float64)
            scan = slr_scan(loaded.expression, purity, gene_names=list(loaded.expression.columns))
            write_table(purity_associated_genes(scan, self.cfg.purity.alpha), self.purity_path)

        key = {"step": "purity", "data": self.data_key, "alpha": self.cfg.purity.alpha}
        self._step("purity", key, [self.purity_path], compute)

    def _kinship_mask(self, model: str, genes: pd.Index) -> np.ndarray:
        mask = kinship_mask(self.settings, genes)[0]
        if model == "lmm_nopurity":
            table = self._purity_genes()
            mask &= ~genes.isin(table.loc[table["purity_associated"], "gene"])
            if mask.sum() < 2:
                raise UserInputError(
                    f"cohort {self.c.name!r}: no genes left to build K without the purity genes"
                )
        return mask

    def scans(self) -> None:
        """SLR, LMM, and LMM with K built without the purity genes."""
        for model in self.cfg.models:
            path = self.folder / f"assoc_{model}.tsv"

            def compute(model: str = model, path: Path = path) -> None:
                loaded, trait, covariates = self._data()
                mask = (
                    None if model == "slr" else self._kinship_mask(model, loaded.expression.columns)
                )
                table = _scan(
                    model,
                    loaded.expression,
                    trait,
                    covariates,
                    self.settings,
                    mask,
                    self.study.client,
                )
                write_table(table, path)

            key = {"step": f"assoc_{model}", "data": self.data_key}
            if model == "lmm_nopurity":
                key["purity"] = self.digests["purity"]
            self._step(f"assoc_{model}", key, [path], compute)

    def gsea(self) -> None:
        """GSEA of each model's ranking (plus the purity sets at any size) and of purity's.

        On a cluster every GSEA of this cohort that is not up to date runs as a task, all at
        once; each step then writes its tables.
        """
        settings = self.cfg.gsea.gsea_settings()
        shared = {"sets": self.study.sets, "settings": settings, "removal": self.study.removal}

        def job(name: str, source: Path) -> tuple[pd.Series, Any]:
            table = _read(source)
            scores = pd.Series(table["stat"].to_numpy(), index=table["gene"].astype(str))
            purity = None if name == "purity" else purity_gene_sets(self._purity_genes())
            return scores, purity

        plans = []
        for name in (*self.cfg.models, "purity"):
            source = self.purity_path if name == "purity" else self.folder / f"assoc_{name}.tsv"
            outputs = [self.folder / f"gsea_{name}.tsv"]
            if name != "purity":
                outputs.append(self.folder / "purity_sets" / f"gsea_{name}.tsv")
            ranking = "purity" if name == "purity" else f"assoc_{name}"
            key = {
                "step": f"gsea_{name}",
                "ranking": self.digests[ranking],
                "purity": self.digests["purity"],
                "gsea": self.gsea_key,
            }
            plans.append((f"gsea_{name}", key, outputs, lambda n=name, s=source: [job(n, s)]))
        done = self._tasks_on_cluster(_ranking_gsea, plans, lambda: shared)
        for step, key, outputs, items in plans:

            def compute(step: str = step, outputs=outputs, items=items) -> None:
                (tables,) = done.get(step) or [_ranking_gsea(items()[0], **shared)]
                for table, path in zip(tables, outputs, strict=True):
                    write_table(table, path)

            self._step(step, key, outputs, compute)

    def summary(self) -> None:
        """Positions, overlap, rank test and GSEA of the purity genes; gene-set overlap."""
        cfg, folder = self.cfg, self.folder
        names = ("purity_positions", "purity_summary", "purity_gsea", "set_overlap")
        paths = [folder / f"{n}.tsv" for n in names]

        def compute() -> None:
            purity_genes = self._purity_genes()
            flagged = purity_genes.loc[purity_genes["purity_associated"], "gene"].tolist()
            gsea_purity = _read(folder / "gsea_purity.tsv")
            positions, summaries, purity_gsea, overlaps = [], [], [], []
            for model in cfg.models:
                scan = _read(folder / f"assoc_{model}.tsv")
                positions.append(purity_positions(scan, purity_genes, model))
                summaries.append(
                    purity_summary(scan, flagged, model, top_n=cfg.purity.top_n, fdr=cfg.purity.fdr)
                )
                rows = _read(folder / "purity_sets" / f"gsea_{model}.tsv")
                purity_gsea.append(
                    rows.rename(columns={"term": "set"}).assign(model=model)[
                        ["model", "set", "size", "es", "nes", "pvalue", "fdr"]
                    ]
                )
                gsea = _read(folder / f"gsea_{model}.tsv")
                overlaps.append(set_overlap(gsea_purity, gsea, model, set_fdr=cfg.purity.set_fdr))
            write_table(pd.concat(positions, ignore_index=True), paths[0])
            write_table(pd.DataFrame(summaries), paths[1])
            write_table(pd.concat(purity_gsea, ignore_index=True), paths[2])
            write_table(pd.concat(overlaps, ignore_index=True), paths[3])

        key = {
            "step": "summary",
            "inputs": {k: v for k, v in self.digests.items()},
            "settings": dataclasses.asdict(cfg.purity),
        }
        self._step("summary", key, paths, compute)

    def subsample(self) -> None:
        """Random subsets (one step per size): Spearman(SLR, LMM) and NES of tracked sets.

        On a cluster every subset of every size not up to date is a task, all submitted at
        once; each step then writes its tables.
        """
        cfg, sub, folder = self.cfg, self.cfg.subsample, self.folder
        plans = []
        for size in sub.sizes:
            paths = [folder / "subsample" / f"{kind}_{size}.tsv" for kind in ("similarity", "gsea")]
            key = {
                "step": f"subsample_{size}",
                "data": self.data_key,
                "purity": self.digests["purity"],
                "seed": cfg.seed,
                "subsample": dataclasses.asdict(sub),
                "gsea": self.gsea_key,
            }
            items = [
                (size, repeat, derived_seed(cfg.seed, self.c.name, "subsample", size, repeat))
                for repeat in range(sub.repeats)
            ]
            plans.append((f"subsample_{size}", key, paths, lambda items=items: items))
        inputs: dict[str, Any] = {}

        def shared() -> dict[str, Any]:
            """What every subset needs (built once, when the first one runs)."""
            if not inputs:
                loaded, trait, covariates = self._data()
                tracked = {k: v for k, v in self.study.sets.items() if k in sub.terms}
                tracked.update(purity_gene_sets(self._purity_genes()))
                inputs.update(
                    expression=loaded.expression.to_numpy(dtype=np.float64),
                    genes=list(loaded.expression.columns),
                    trait=trait,
                    covariates=covariates,
                    settings=self.settings,
                    tracked=tracked,
                    gsea_settings=cfg.gsea.gsea_settings(
                        permutations=sub.permutations, tail="none"
                    ),
                    removal=self.study.removal,
                )
            return inputs

        done = self._tasks_on_cluster(_subsample_replicate, plans, shared)
        for step, key, paths, items in plans:

            def compute(step: str = step, paths: list[Path] = paths, items=items) -> None:
                results = done.get(step)
                if results is None:
                    results = [_subsample_replicate(item, **shared()) for item in items()]
                write_table(pd.DataFrame([similarity for similarity, _ in results]), paths[0])
                columns = ["size", "repeat", "model", "term", "nes", "pvalue", "fdr"]
                nes = pd.concat([table for _, table in results], ignore_index=True)
                write_table(nes[columns], paths[1])

            self._step(step, key, paths, compute)
        for i, name in enumerate(("subsample_similarity.tsv", "subsample_gsea.tsv")):
            table = pd.concat([_read(p[i]) for _, _, p, _ in plans], ignore_index=True)
            write_table(table, folder / name)


def _n_steps(config: StudyConfig, study: _Study) -> int:
    per_cohort = 1 + len(config.models) + (len(config.models) + 1) + 1  # purity, scans, gsea, sum
    total = 0
    for c in config.cohorts:
        total += per_cohort + (c.seg is not None)
        if study._subsampled(c):
            total += len(config.subsample.sizes)
    return total


def run_study(
    config: StudyConfig,
    *,
    force: bool = False,
    progress: bool = True,
    report: bool = True,
    client: Any = None,
) -> StudyResult:
    """Run (or resume) the study described by ``config``; see ``docs/study.md``.

    Parameters
    ----------
    config
        From `exprlmm.study.load_study_config` or `study_config_from_dict`.
    force
        Recompute every step even when its outputs are up to date.
    progress
        Show a progress bar (stderr).
    report
        Draw the figures and write ``report.html`` (False: tables only).
    client
        A ``distributed.Client`` (`exprlmm.assoc.distributed.open_client`): the cohorts'
        scans run gene chunks on the cluster and every subsample is a task of its own. The
        cluster does not enter the steps' hashes: a study may be resumed with or without one.

    Raises
    ------
    UserInputError
        Before any heavy work, for missing files or columns, cohorts with too few samples after
        matching, subsample sizes larger than a cohort, unknown gene sets.
    """
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    # The study's log goes to <output>/study.log (INFO) and, at the console's level, to stderr.
    handler = logging.FileHandler(out / "study.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler()
    console.setLevel(logging.getLogger().getEffectiveLevel())
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    saved = (log.level, log.propagate)
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    log.addHandler(console)
    started = time.perf_counter()
    try:
        log.info("exprlmm %s study → %s", __version__, out)
        write_text_atomic(out / "study.resolved.toml", to_toml(config))
        study = _Study(config, client)
        _check_gene_sets(config, study)
        if client is not None:
            _check_cluster_backend(config)
        with (
            threadpool_limits(limits=config.threads),
            tqdm(
                total=_n_steps(config, study), disable=not progress, unit="step", desc="study"
            ) as bar,
        ):
            steps = _Steps(force, bar)
            for c in config.cohorts:
                study.prepare(c, steps)
            for c in config.cohorts:
                study.cohort(c, steps)
        study.summary()
        timings = {**steps.timings, "total_s": time.perf_counter() - started}
        report_path = None
        if report:
            from exprlmm.study.report import write_figures, write_report

            highlight = list(config.gsea.highlight)
            q_floor = 1.0 / config.gsea.gsea_settings().permutations
            write_figures(
                out, highlight_terms=highlight, models=list(config.models), q_floor=q_floor
            )
            timings["total_s"] = time.perf_counter() - started
            report_path = write_report(
                out, config=config.to_dict(), timings=timings, notes=_notes(out, config)
            )
        write_run_record(
            out / "study.run.json",
            {
                "command": "study",
                "config": config.to_dict(),
                "seed": config.seed,
                "randomness": "GSEA nulls (seed in [gsea]); subsets: seeds derived from the "
                "study seed, the cohort, the size and the repeat (written in "
                "subsample_similarity.tsv)",
                "cluster": None if client is None else _cluster_info(client),
                "steps_run": steps.run,
                "steps_skipped": steps.skipped,
                "timings": timings,
                "environment": environment(),
            },
        )
        log.info(
            "finished: %d steps run, %d up to date, %.1f s",
            len(steps.run),
            len(steps.skipped),
            timings["total_s"],
        )
    finally:
        log.removeHandler(handler)
        log.removeHandler(console)
        log.setLevel(saved[0])
        log.propagate = saved[1]
        handler.close()
    return StudyResult(
        output=out,
        report=report_path,
        steps_run=tuple(steps.run),
        steps_skipped=tuple(steps.skipped),
        timings=timings,
    )


def _check_cluster_backend(config: StudyConfig) -> None:
    """A cluster's workers run numpy: ``backend`` torch/cupy cannot go with it."""
    for c in config.cohorts:
        backend = config.assoc_options(c).get("backend", "numpy")
        if backend != "numpy":
            raise UserInputError(
                f"cohort {c.name!r}: backend {backend!r} with --workers/--scheduler: the workers "
                'run numpy; drop the cluster options or set backend = "numpy"'
            )


def _cluster_info(client: Any) -> dict[str, Any]:
    info = client.scheduler_info(n_workers=-1)
    return {"scheduler": info.get("address"), "n_workers": len(info.get("workers", {}))}


def _notes(out: Path, config: StudyConfig) -> list[str]:
    """One plain sentence per cohort for the top of the report."""
    notes = []
    for c in config.cohorts:
        table = _read(out / "cohorts" / c.name / "purity_summary.tsv").set_index("model")
        first = table.iloc[0]
        auc = ", ".join(f"{m} {row.rank_auc:.3f}" for m, row in table.iterrows())
        hits = ", ".join(
            f"{m} {int(row.n_trait_assoc)} ({int(row.n_overlap)} purity genes)"
            for m, row in table.iterrows()
        )
        notes.append(
            f"{c.name}: {int(first.n_purity_genes)} of {int(first.n_genes)} genes are "
            f"purity-associated ({first.share_expected:.1%}). Rank AUC of the purity genes in "
            f"each ranking (0.5 = no enrichment): {auc}. Genes at BH q < {first.fdr:g}: {hits}."
        )
    return notes


def _check_gene_sets(config: StudyConfig, study: _Study) -> None:
    """Every set named in ``[gsea] highlight`` / ``[subsample] terms`` must exist."""
    wanted = set(config.gsea.highlight)
    if config.subsample.sizes:
        wanted |= set(config.subsample.terms)
    missing = sorted(wanted - set(study.sets))
    if missing:
        raise UserInputError(
            f"gene set {missing[0]!r} ([gsea] highlight or [subsample] terms) is in none of the "
            f"collections {', '.join(config.gsea.gene_sets)}"
        )
