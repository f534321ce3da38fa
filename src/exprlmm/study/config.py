"""The study configuration: a TOML file (or CLI options) → a validated :class:`StudyConfig`.

Every option of ``exprlmm assoc`` (table ``[assoc]``), ``exprlmm icna`` (``[icna]``) and
``exprlmm gsea`` (``[gsea]``) can be set for the whole study, and ``[assoc]`` / ``[icna]`` also
per cohort. Unknown keys, missing files and conflicting settings are reported before any heavy
work starts, naming the cohort and the key. Relative paths are relative to the TOML file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exprlmm.errors import UserInputError
from exprlmm.gsea.engine import GseaSettings
from exprlmm.scores.icna import IcnaSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "MODELS",
    "CohortConfig",
    "GseaConfig",
    "PurityConfig",
    "StudyConfig",
    "SubsampleConfig",
    "load_study_config",
    "parse_cohort_option",
    "read_study_file",
    "study_config_from_dict",
    "to_toml",
]

MODELS = ("slr", "lmm", "lmm_nopurity")

# `exprlmm assoc` options a study may set (the cohort's files and the trait are set elsewhere).
ASSOC_KEYS = {
    "covariates": (list, tuple),
    "method": str,
    "delta": (str, int, float),
    "leave_out": str,
    "test": str,
    "kinship_genes": str,
    "kinship_exclude": str,
    "standardize": bool,
    "sample_column": str,
    "orientation": str,
    "gene_column": str,
    "barcode_length": int,
    "log2p1": bool,
    "missing": str,
    "duplicates": str,
    "chunk_size": int,
    "backend": str,
    "device": str,
    "precision": str,
    "kinship_rank": int,
    "kinship_seed": int,
}
ICNA_KEYS = {
    "value": str,
    "min_abs_change": (int, float),
    "exclude_chromosomes": (list, tuple),
    "fga_threshold": (int, float),
    "tumor_only": bool,
    "value_column": str,
}
_GSEA_SETTINGS = {f.name for f in dataclasses.fields(GseaSettings)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class CohortConfig:
    """One cohort: its files, where its trait and purity come from, and option overrides.

    Attributes
    ----------
    name
        Folder-safe name (letters, digits, ``_ . -``).
    expression, samples
        Expression matrix and sample sheet (any format ``exprlmm assoc`` reads).
    seg
        Segmented copy number; the trait is then ICNA computed from it.
    scores
        A table of precomputed sample scores holding the trait column (instead of ``seg``);
        without either, the trait column is read from the sample sheet.
    purity_column
        Sample-sheet column with tumour purity.
    assoc, icna
        Per-cohort overrides of the study's ``[assoc]`` / ``[icna]`` tables.
    """

    name: str
    expression: str
    samples: str
    seg: str | None = None
    scores: str | None = None
    purity_column: str = "purity"
    assoc: Mapping[str, Any] = field(default_factory=dict)
    icna: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PurityConfig:
    """Purity-associated genes and the overlap summaries.

    ``alpha``: Bonferroni threshold of expression ~ purity (paper: 0.01); ``top_n``: size of the
    top of each ranking (by p-value) in which the purity genes' share is reported; ``fdr``: BH
    level that makes a gene trait-associated; ``set_fdr``: GSEA q below which a gene set counts
    as associated (paper: 0.25).
    """

    alpha: float = 0.01
    top_n: int = 500
    fdr: float = 0.05
    set_fdr: float = 0.25


@dataclass(frozen=True)
class GseaConfig:
    """Gene sets, genes removed from them, and the `GseaSettings` of every GSEA run.

    ``gene_sets``: GMT paths or built-in collections; ``remove_genes``: a built-in collection
    or a file of genes removed from every other set (paper: histone genes); ``highlight``:
    sets shown in the bar plots; ``settings``: keyword arguments of `GseaSettings`.
    """

    gene_sets: tuple[str, ...] = ("reactome", "wikipathways", "estimate", "histone", "ribosomal")
    remove_genes: str | None = "histone"
    highlight: tuple[str, ...] = (
        "WP_CELL_CYCLE",
        "REACTOME_CELL_CYCLE_CHECKPOINTS",
        "HISTONE_GENES",
        "ESTIMATE_IMMUNE_SIGNATURE",
        "ESTIMATE_STROMAL_SIGNATURE",
        "RIBOSOMAL_PROTEIN_GENES",
    )
    settings: Mapping[str, Any] = field(
        default_factory=lambda: {"permutations": 1000, "seed": 149, "tail": "none"}
    )

    def gsea_settings(self, **overrides: Any) -> GseaSettings:
        """The `GseaSettings` of this study (``overrides`` win)."""
        return GseaSettings(**{**self.settings, **overrides})


@dataclass(frozen=True)
class SubsampleConfig:
    """Random subsets of cohorts (paper's Supp. Fig S2).

    ``sizes``: subset sizes (each at most the cohort's N); ``repeats``: subsets per size;
    ``cohorts``: cohorts to subsample (default all); ``terms``: gene sets whose NES is tracked
    (the purity sets are always added); ``permutations``: GSEA permutations per subset.
    """

    sizes: tuple[int, ...] = ()
    repeats: int = 3
    cohorts: tuple[str, ...] = ()
    terms: tuple[str, ...] = (
        "WP_CELL_CYCLE",
        "ESTIMATE_IMMUNE_SIGNATURE",
        "ESTIMATE_STROMAL_SIGNATURE",
    )
    permutations: int = 1000


@dataclass(frozen=True)
class StudyConfig:
    """A whole study (see ``docs/study.md`` for the file format and the outputs)."""

    cohorts: tuple[CohortConfig, ...]
    output: str = "study_output"
    trait: str = "icna"
    models: tuple[str, ...] = MODELS
    seed: int = 149
    threads: int = 1
    assoc: Mapping[str, Any] = field(default_factory=dict)
    icna: Mapping[str, Any] = field(default_factory=dict)
    purity: PurityConfig = field(default_factory=PurityConfig)
    gsea: GseaConfig = field(default_factory=GseaConfig)
    subsample: SubsampleConfig = field(default_factory=SubsampleConfig)

    def assoc_options(self, cohort: CohortConfig) -> dict[str, Any]:
        """The study's ``[assoc]`` table overridden by the cohort's."""
        return {**self.assoc, **cohort.assoc}

    def icna_options(self, cohort: CohortConfig) -> dict[str, Any]:
        """The study's ``[icna]`` table overridden by the cohort's."""
        return {**self.icna, **cohort.icna}

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the resolved configuration written to the output)."""
        data = dataclasses.asdict(self)
        cohorts = data.pop("cohorts")
        data["cohorts"] = cohorts
        return json.loads(json.dumps(data))


# --------------------------------------------------------------------------------------
# parsing and validation
# --------------------------------------------------------------------------------------


def _check_keys(table: Mapping[str, Any], allowed: Any, source: str, where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise UserInputError(
            f"{source}: unknown key {unknown[0]!r} in {where}; allowed: {', '.join(sorted(allowed))}"
        )


def _check_types(table: Mapping[str, Any], types: Mapping[str, Any], source: str, where: str):
    _check_keys(table, types, source, where)
    for key, value in table.items():
        expected = types[key]
        if isinstance(value, bool) and expected is not bool and bool not in _as_tuple(expected):
            ok = False
        else:
            ok = isinstance(value, expected)
        if not ok:
            raise UserInputError(
                f"{source}: {where} key {key!r} has the wrong type ({type(value).__name__}: {value!r})"
            )


def _as_tuple(types: Any) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _table(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise UserInputError(f"{source}: '{key}' must be a table ([{key}])")
    return dict(value)


def _path(value: Any, base: Path, source: str, where: str, *, must_exist: bool = True) -> str:
    if not isinstance(value, str) or not value:
        raise UserInputError(f"{source}: {where} must be a file path")
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = base / p
    if must_exist and not p.exists():
        raise UserInputError(f"{source}: {where} = {value!r}: file not found ({p})")
    return str(p)


def _resolve_gene_set_spec(spec: str, base: Path, source: str, where: str) -> str:
    from exprlmm.io.gmt import BUILTIN_COLLECTIONS

    bare = spec.split(":", 1)[1] if spec.startswith("builtin:") else spec
    if bare.lower() in BUILTIN_COLLECTIONS and not (base / spec).exists():
        return bare.lower()
    return _path(spec, base, source, where)


def _cohort(raw: Any, i: int, base: Path, source: str) -> CohortConfig:
    if not isinstance(raw, Mapping):
        raise UserInputError(f"{source}: cohorts[{i}] must be a table ([[cohorts]])")
    allowed = {f.name for f in dataclasses.fields(CohortConfig)}
    _check_keys(raw, allowed, source, f"cohorts[{i}]")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserInputError(
            f"{source}: cohorts[{i}] needs a name of letters, digits, '_', '.' or '-' "
            f"(got {name!r})"
        )
    where = f"cohort {name!r}"
    for key in ("expression", "samples"):
        if key not in raw:
            raise UserInputError(f"{source}: {where} has no '{key}' file")
    if raw.get("seg") and raw.get("scores"):
        raise UserInputError(
            f"{source}: {where} sets both 'seg' and 'scores'; give one source of the trait"
        )
    assoc = _table(raw, "assoc", source)
    icna = _table(raw, "icna", source)
    _check_types(assoc, ASSOC_KEYS, source, f"{where} [assoc]")
    _check_types(icna, ICNA_KEYS, source, f"{where} [icna]")
    purity = raw.get("purity_column", "purity")
    if not isinstance(purity, str) or not purity:
        raise UserInputError(f"{source}: {where} key 'purity_column' must be a column name")
    return CohortConfig(
        name=name,
        expression=_path(raw["expression"], base, source, f"{where} key 'expression'"),
        samples=_path(raw["samples"], base, source, f"{where} key 'samples'"),
        seg=_path(raw["seg"], base, source, f"{where} key 'seg'") if raw.get("seg") else None,
        scores=_path(raw["scores"], base, source, f"{where} key 'scores'")
        if raw.get("scores")
        else None,
        purity_column=purity,
        assoc=_relative_assoc_paths(assoc, base, source, where),
        icna=icna,
    )


def _relative_assoc_paths(assoc: dict[str, Any], base: Path, source: str, where: str):
    for key in ("kinship_genes", "kinship_exclude"):
        if key in assoc:
            assoc[key] = _path(assoc[key], base, source, f"{where} [assoc] key {key!r}")
    if "covariates" in assoc:
        assoc["covariates"] = [str(c) for c in assoc["covariates"]]
    if "delta" in assoc:
        assoc["delta"] = str(assoc["delta"])
    return assoc


def _positive_number(value: Any, source: str, where: str, *, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"{source}: {where} must be a number (got {value!r})")
    if value <= 0 or (upper is not None and value > upper):
        bound = f" and at most {upper}" if upper is not None else ""
        raise UserInputError(f"{source}: {where} must be positive{bound} (got {value!r})")
    return float(value)


def _positive_int(value: Any, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserInputError(f"{source}: {where} must be a positive integer (got {value!r})")
    return int(value)


def _strings(value: Any, source: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise UserInputError(f"{source}: {where} must be a list of strings (got {value!r})")
    return tuple(value)


def study_config_from_dict(
    data: Mapping[str, Any], *, base: str | Path = ".", source: str = "study config"
) -> StudyConfig:
    """Validate a parsed configuration (TOML tables as dicts) into a `StudyConfig`.

    Raises
    ------
    UserInputError
        Naming ``source``, the cohort and the key of the first problem found.
    """
    base = Path(base)
    top = {
        "output",
        "trait",
        "models",
        "seed",
        "threads",
        "assoc",
        "icna",
        "purity",
        "gsea",
        "subsample",
        "cohorts",
    }
    _check_keys(data, top, source, "the top level")
    raw_cohorts = data.get("cohorts", [])
    if not isinstance(raw_cohorts, list) or not raw_cohorts:
        raise UserInputError(f"{source}: no cohort given; add at least one [[cohorts]] table")
    cohorts = tuple(_cohort(c, i, base, source) for i, c in enumerate(raw_cohorts))
    names = [c.name for c in cohorts]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserInputError(f"{source}: cohort name {dup[0]!r} is used twice")

    models = _strings(data.get("models", list(MODELS)), source, "'models'")
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise UserInputError(
            f"{source}: 'models' has {bad[0] if bad else 'nothing'!r}; choose from {', '.join(MODELS)}"
        )
    trait = data.get("trait", "icna")
    if not isinstance(trait, str) or not trait:
        raise UserInputError(f"{source}: 'trait' must be a column name")
    for c in cohorts:
        if c.seg is not None and trait != "icna":
            raise UserInputError(
                f"{source}: cohort {c.name!r} gives 'seg' but the trait is {trait!r}; "
                "a .seg file yields trait 'icna' (or drop 'seg' and read the trait column)"
            )

    assoc = _table(data, "assoc", source)
    _check_types(assoc, ASSOC_KEYS, source, "[assoc]")
    assoc = _relative_assoc_paths(assoc, base, source, "[assoc]")
    icna = _table(data, "icna", source)
    _check_types(icna, ICNA_KEYS, source, "[icna]")
    for c in cohorts:
        opts = {**icna, **c.icna}
        settings = {k: v for k, v in opts.items() if k not in ("tumor_only", "value_column")}
        try:
            IcnaSettings(**settings)
        except (TypeError, ValueError) as err:
            raise UserInputError(f"{source}: cohort {c.name!r} [icna]: {err}") from None

    purity_raw = _table(data, "purity", source)
    _check_keys(purity_raw, {f.name for f in dataclasses.fields(PurityConfig)}, source, "[purity]")
    purity = PurityConfig(
        alpha=_positive_number(purity_raw.get("alpha", 0.01), source, "[purity] alpha", upper=1),
        top_n=_positive_int(purity_raw.get("top_n", 500), source, "[purity] top_n"),
        fdr=_positive_number(purity_raw.get("fdr", 0.05), source, "[purity] fdr", upper=1),
        set_fdr=_positive_number(
            purity_raw.get("set_fdr", 0.25), source, "[purity] set_fdr", upper=1
        ),
    )

    gsea_raw = _table(data, "gsea", source)
    gsea_keys = {"gene_sets", "remove_genes", "highlight"} | _GSEA_SETTINGS
    _check_keys(gsea_raw, gsea_keys, source, "[gsea]")
    defaults = GseaConfig()
    specs = _strings(
        gsea_raw.get("gene_sets", list(defaults.gene_sets)), source, "[gsea] gene_sets"
    )
    specs = tuple(_resolve_gene_set_spec(s, base, source, "[gsea] gene_sets") for s in specs)
    remove = gsea_raw.get("remove_genes", defaults.remove_genes)
    if remove in ("", "none", False):
        remove = None
    if remove is not None:
        remove = _resolve_gene_set_spec(str(remove), base, source, "[gsea] remove_genes")
    settings = {**defaults.settings}
    settings.update({k: v for k, v in gsea_raw.items() if k in _GSEA_SETTINGS})
    try:
        GseaSettings(**settings)
    except (TypeError, UserInputError) as err:
        raise UserInputError(f"{source}: [gsea]: {err}") from None
    gsea = GseaConfig(
        gene_sets=specs,
        remove_genes=remove,
        highlight=_strings(
            gsea_raw.get("highlight", list(defaults.highlight)), source, "[gsea] highlight"
        ),
        settings=settings,
    )

    sub_raw = _table(data, "subsample", source)
    _check_keys(
        sub_raw, {f.name for f in dataclasses.fields(SubsampleConfig)}, source, "[subsample]"
    )
    sub_defaults = SubsampleConfig()
    sizes = sub_raw.get("sizes", [])
    if not isinstance(sizes, list):
        raise UserInputError(f"{source}: [subsample] sizes must be a list of integers")
    sizes_t = tuple(_positive_int(s, source, "[subsample] sizes") for s in sizes)
    if any(s < 5 for s in sizes_t):
        raise UserInputError(f"{source}: [subsample] sizes must be at least 5 samples")
    sub_cohorts = _strings(sub_raw.get("cohorts", []), source, "[subsample] cohorts")
    unknown = [c for c in sub_cohorts if c not in names]
    if unknown:
        raise UserInputError(f"{source}: [subsample] cohorts names unknown cohort {unknown[0]!r}")
    if sizes_t and not {"slr", "lmm"} <= set(models):
        raise UserInputError(
            f"{source}: [subsample] compares SLR with LMM; 'models' must include slr and lmm"
        )
    subsample = SubsampleConfig(
        sizes=tuple(sorted(set(sizes_t))),
        repeats=_positive_int(
            sub_raw.get("repeats", sub_defaults.repeats), source, "[subsample] repeats"
        ),
        cohorts=sub_cohorts,
        terms=_strings(sub_raw.get("terms", list(sub_defaults.terms)), source, "[subsample] terms"),
        permutations=_positive_int(
            sub_raw.get("permutations", sub_defaults.permutations),
            source,
            "[subsample] permutations",
        ),
    )

    seed = data.get("seed", 149)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserInputError(f"{source}: 'seed' must be a non-negative integer (got {seed!r})")
    output = data.get("output", "study_output")
    if not isinstance(output, str) or not output:
        raise UserInputError(f"{source}: 'output' must be a folder path")
    out = Path(output).expanduser()
    return StudyConfig(
        cohorts=cohorts,
        output=str(out if out.is_absolute() else base / out),
        trait=trait,
        models=models,
        seed=seed,
        threads=_positive_int(data.get("threads", 1), source, "'threads'"),
        assoc=assoc,
        icna=icna,
        purity=purity,
        gsea=gsea,
        subsample=subsample,
    )


def read_study_file(path: str | Path) -> dict[str, Any]:
    """Parse a study TOML file into plain tables (not yet validated)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{p}: study configuration not found") from None
    except UnicodeDecodeError:
        raise UserInputError(f"{p}: not a UTF-8 text file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserInputError(f"{p}: not valid TOML ({err})") from None


def load_study_config(path: str | Path, *, output: str | None = None) -> StudyConfig:
    """Read and validate a study TOML file (``output`` overrides its ``output`` key)."""
    data = read_study_file(path)
    if output is not None:
        data["output"] = str(Path(output).resolve())
    return study_config_from_dict(data, base=Path(path).resolve().parent, source=str(path))


def parse_cohort_option(spec: str) -> dict[str, Any]:
    """``NAME:key=value,key=value`` (``exprlmm study --cohort``) → a cohort table."""
    name, sep, rest = spec.partition(":")
    if not sep or not name:
        raise UserInputError(
            f"--cohort {spec!r}: use NAME:expression=FILE,samples=FILE[,seg=FILE]"
            "[,purity_column=COL]"
        )
    table: dict[str, Any] = {"name": name}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise UserInputError(f"--cohort {spec!r}: {item!r} is not key=value")
        table[key.strip()] = value.strip()
    return table


# --------------------------------------------------------------------------------------
# writing the resolved configuration
# --------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_table(prefix: str, table: Mapping[str, Any], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if v is not None and not isinstance(v, Mapping)}
    lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
    for key, sub in table.items():
        if isinstance(sub, Mapping):
            lines.append("")
            lines.append(f"[{prefix}{key}]")
            _toml_table(f"{prefix}{key}.", sub, lines)


def to_toml(config: StudyConfig) -> str:
    """The resolved configuration as TOML (``None`` values are left out)."""
    data = config.to_dict()
    cohorts = data.pop("cohorts")
    gsea = data.pop("gsea")
    gsea = {**{k: v for k, v in gsea.items() if k != "settings"}, **gsea["settings"]}
    gsea["remove_genes"] = gsea["remove_genes"] or "none"
    data["gsea"] = gsea
    lines = ["# exprlmm study: resolved configuration (every default filled in)"]
    _toml_table("", data, lines)
    for cohort in cohorts:
        lines.append("")
        lines.append("[[cohorts]]")
        _toml_table("cohorts.", cohort, lines)
    return "\n".join(lines) + "\n"
