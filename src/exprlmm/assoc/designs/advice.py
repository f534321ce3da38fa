r"""Design advice: plain-language checks of a formula against the sample sheet, before fitting.

Each check returns :class:`Finding` objects (``level`` ``"error"``, ``"warning"`` or
``"note"``, a stable ``code`` and a ``message`` written for the bench scientist):

``few-levels``
    A random intercept with fewer than 5 levels: its variance is estimated from that many
    group means (``levels − 1`` df), REML often puts it at 0 (a singular fit, which is then
    the fixed-effects model); suggest the factor as a fixed effect when the residual df allow.
``one-per-level``
    Every level has one sample: the random intercept cannot be told apart from the residual.
``numeric-grouping``
    A numeric column used as a grouping factor (``(1|urea.score)``): its order and spacing
    are thrown away, and no slope of it is estimated or tested.
``no-tested-term``
    The fixed part is the intercept only: nothing relates expression to a covariate, so the
    model cannot say whether a gene is associated with anything (variance components are not
    tests).
``confounded``
    A numeric covariate largely determined by a grouping factor (:math:`R^2` of the one-way
    ANOVA ``covariate ~ factor`` ≥ 0.5): its test then rests on within-group variation only.
``score-of-measured``
    A column that looks like a rank/bin of a measured column (name ``<var>.score``/``_score``
    /``_bin``/``_rank``/``_class`` next to ``<var>``, or few integer values with
    :math:`|\rho_{Spearman}| \ge 0.8` against a continuous column): use the measured value.
``too-many-parameters`` / ``few-residual-df``
    ``p + m ≥ N`` fixed + variance parameters (cannot be fitted), or fewer than 5 residual df.
``multiple-testing``
    The smallest partial correlation that can survive Bonferroni over genes × tested terms at
    :math:`N - p` residual df (:math:`r = t/\sqrt{t^2 + \nu}` with
    :math:`t = t_{\nu}^{-1}(1 - 0.025/(G T))`); BH is less strict, but the order of magnitude
    holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from exprlmm.assoc.designs.formula import FormulaSpec, parse_formula

__all__ = ["Finding", "design_advice", "format_advice"]

_SCORE_SUFFIX = re.compile(r"^(?P<base>.+?)[._](score|bin|bins|rank|class|grade|level|cat)$", re.I)


@dataclass(frozen=True)
class Finding:
    """One piece of design advice."""

    level: Literal["error", "warning", "note"]
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "code": self.code, "message": self.message}


def _is_numeric(values: pd.Series) -> bool:
    """Numeric dtype, or text whose every value parses as a number (codes kept as text)."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def _as_float(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _r2_one_way(values: np.ndarray, groups: pd.Series) -> float:
    """:math:`R^2` of ``values ~ groups`` (between-group over total sum of squares)."""
    frame = pd.DataFrame({"v": values, "g": groups.astype(str).to_numpy()})
    total = float(((frame.v - frame.v.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    fitted = frame.groupby("g").v.transform("mean")
    return float(((fitted - frame.v.mean()) ** 2).sum() / total)


def _data_variables(fixed: str, samples: pd.DataFrame) -> list[str]:
    tokens = re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", fixed)
    out: list[str] = []
    for t in tokens:
        if t in samples.columns and t not in out:
            out.append(t)
    return out


def _score_source(column: str, samples: pd.DataFrame) -> tuple[str, float] | None:
    """``(measured column, Spearman ρ)`` if ``column`` looks like a score of a measured one."""
    values = samples[column]
    if not _is_numeric(values):
        return None
    match = _SCORE_SUFFIX.match(column)
    if match and match.group("base") in samples.columns:
        base = match.group("base")
        if _is_numeric(samples[base]):
            rho = stats.spearmanr(_as_float(values), _as_float(samples[base])).statistic
            return base, float(rho)
    v = _as_float(values)
    # unnamed scores: integer codes with 4–10 values (3-level codes are usually group IDs)
    if np.all(v == np.round(v)) and 4 <= len(np.unique(v)) <= 10:
        best: tuple[str, float] | None = None
        for other in samples.columns:
            if other == column or not _is_numeric(samples[other]):
                continue
            o = _as_float(samples[other])
            # the measured column must be continuous-looking (mostly distinct values)
            if len(np.unique(o)) < max(2 * len(np.unique(v)), 0.8 * len(o)) or np.ptp(o) == 0:
                continue
            rho = float(stats.spearmanr(v, o).statistic)
            if abs(rho) >= 0.8 and (best is None or abs(rho) > abs(best[1])):
                best = (other, rho)
        return best
    return None


def design_advice(
    samples: pd.DataFrame,
    formula: str | FormulaSpec,
    *,
    n_genes: int | None = None,
    tested: Sequence[str] | None = None,
    n_fixed: int | None = None,
) -> list[Finding]:
    """Check a design before fitting and explain, in plain language, what it can support.

    Parameters
    ----------
    samples
        The sample sheet rows that will be analysed (one per sample).
    formula
        Formula text or parsed spec (see :func:`exprlmm.assoc.designs.formula.parse_formula`).
    n_genes
        Number of genes to be tested (for the multiple-testing note).
    tested
        Fixed terms to be tested (default: every data variable of the fixed part).
    n_fixed
        Number of fixed-effect columns ``p`` (default: counted from the formula: intercept plus
        one per numeric variable, ``levels − 1`` per categorical one).

    Returns
    -------
    list of Finding
        In order of importance (errors, then warnings, then notes).
    """
    spec = parse_formula(formula) if isinstance(formula, str) else formula
    n = len(samples)
    findings: list[Finding] = []
    fixed_vars = _data_variables(spec.fixed, samples)
    wrapped = set(re.findall(r"C\(\s*([A-Za-z_.][A-Za-z0-9_.]*)", spec.fixed))
    if n_fixed is None:
        n_fixed = 1
        for var in fixed_vars:
            col = samples[var]
            n_fixed += 1 if _is_numeric(col) else max(col.nunique() - 1, 1)
    n_random = len(spec.random)

    # ---------------------------------------------------------------- random intercepts
    for term in spec.random:
        labels = samples[list(term.factors)].astype(str).agg(":".join, axis=1)
        k = labels.nunique()
        sizes = labels.value_counts()
        if k == n or sizes.max() == 1:
            findings.append(
                Finding(
                    "error",
                    "one-per-level",
                    f"(1|{term.name}) has one sample per level ({k} levels for {n} samples): "
                    "its variance cannot be told apart from the residual variance. Drop it.",
                )
            )
        elif k < 5:
            resid_df = n - n_fixed - (k - 1)
            fixed_hint = (
                f" With {n} samples, {term.name} as a fixed effect costs {k - 1} df and leaves "
                f"{resid_df} residual df"
                + (": prefer it as a fixed effect." if resid_df >= 3 else ", which is too few.")
            )
            findings.append(
                Finding(
                    "warning",
                    "few-levels",
                    f"(1|{term.name}) has {k} levels: its variance is estimated from {k} group "
                    f"means ({k - 1} df), so it is poorly determined and REML often puts it at "
                    "0 (a singular fit, which then equals the fixed-effects model). Random "
                    "effects want 5 or more levels." + fixed_hint,
                )
            )
        for factor in term.factors:
            col = samples[factor]
            source = _score_source(factor, samples) if _is_numeric(col) else None
            if source is not None and col.nunique() > 2:
                if abs(source[1]) >= 0.5:
                    extra = (
                        f" It looks like a score of the measured {source[0]} (Spearman ρ = "
                        f"{source[1]:.2f}): test {source[0]} itself as a fixed effect."
                    )
                else:
                    extra = (
                        f" It is named like a score of {source[0]} but does not follow it "
                        f"(Spearman ρ = {source[1]:.2f}): check what it records; if it is a "
                        f"binned {source[0]}, test {source[0]} itself as a fixed effect."
                    )
                findings.append(
                    Finding(
                        "warning",
                        "numeric-grouping",
                        f"(1|{factor}) uses the numeric column {factor} ({col.nunique()} values) "
                        "as unordered groups: its order and spacing are discarded and no slope "
                        f"of {factor} is estimated or tested, so this model cannot say whether "
                        f"expression rises or falls with {factor}." + extra,
                    )
                )

    # ---------------------------------------------------------------- fixed part
    if not fixed_vars:
        measured = [
            c
            for c in samples.columns
            if _is_numeric(samples[c])
            and samples[c].nunique() > 10 // 2
            and c not in spec.variables
        ]
        suggestion = ""
        if measured:
            groups = [
                c
                for c in samples.columns
                if c not in measured
                and c not in spec.variables
                and samples[c].nunique() < n
                and _score_source(c, samples) is None
            ]
            rand = f" + (1|{groups[0]})" if groups else ""
            suggestion = f" To ask which genes follow {', '.join(measured[:3])}, fit e.g. '~ {' + '.join(measured[:3])}{rand}'."
        findings.append(
            Finding(
                "error" if n_random else "warning",
                "no-tested-term",
                "The fixed part has only the intercept: nothing relates expression to a "
                "covariate, so no p-value here answers 'is this gene associated with X?'. The "
                "only fixed effect is the mean; variance components describe spread, they are "
                "not tests of association (and with few levels they are poorly estimated). "
                "Separate lm(gene ~ x) fits do test a slope, which is why they can be "
                "significant while this model is not." + suggestion,
            )
        )
    for var in fixed_vars:
        source = _score_source(var, samples) if var not in wrapped else None
        if source is not None:
            findings.append(
                Finding(
                    "warning",
                    "score-of-measured",
                    f"{var} looks like a score (rank/bin) of the measured {source[0]} "
                    f"(Spearman ρ = {source[1]:.2f}): binning throws information away; use "
                    f"{source[0]} itself.",
                )
            )
    # confounding of numeric fixed covariates with grouping factors (random or categorical)
    groupings = [t.name for t in spec.random] + [
        v for v in fixed_vars if not _is_numeric(samples[v]) or v in wrapped
    ]
    for var in fixed_vars:
        if not _is_numeric(samples[var]) or var in wrapped:
            continue
        for grouping in groupings:
            if grouping == var:
                continue
            factors = grouping.split(":")
            labels = samples[factors].astype(str).agg(":".join, axis=1)
            if labels.nunique() >= n:
                continue
            r2 = _r2_one_way(_as_float(samples[var]), labels)
            if r2 >= 0.5:
                findings.append(
                    Finding(
                        "warning",
                        "confounded",
                        f"{var} is largely determined by {grouping} (R² of {var} ~ {grouping} = "
                        f"{r2:.2f}): the effects of {var} and of {grouping} can hardly be told "
                        f"apart; with {grouping} in the model the test of {var} rests on "
                        f"within-{grouping} variation ({1 - r2:.0%} of its variance), so power is "
                        "low, and without it a gene that differs by group looks associated with "
                        f"{var}. Report both fits and say so.",
                    )
                )

    # ---------------------------------------------------------------- size
    n_params = n_fixed + n_random + 1
    resid_df = n - n_fixed
    if n_params >= n or resid_df < 1:
        findings.append(
            Finding(
                "error",
                "too-many-parameters",
                f"{n_fixed} fixed effects + {n_random + 1} variance components = {n_params} "
                f"parameters for {n} samples: the model cannot be estimated. Drop terms.",
            )
        )
    elif resid_df < 5:
        findings.append(
            Finding(
                "warning",
                "few-residual-df",
                f"{n} samples and {n_fixed} fixed effects leave {resid_df} residual df: "
                "per-gene variances are very noisy; empirical-Bayes moderation (--ebayes) "
                "borrows strength across genes.",
            )
        )
    if n_genes is not None and resid_df >= 1:
        n_terms = len(tested) if tested is not None else max(len(fixed_vars), 1)
        m = max(n_genes * n_terms, 1)
        t = float(stats.t.isf(0.025 / m, resid_df))
        r = t / np.sqrt(t * t + resid_df)
        findings.append(
            Finding(
                "note",
                "multiple-testing",
                f"{n_genes} genes × {n_terms} term(s) = {m} tests at {resid_df} residual df: "
                f"passing Bonferroni at 5% needs |t| ≥ {t:.1f}, i.e. a partial correlation "
                f"|r| ≥ {r:.2f} with the covariate. Only strong effects can be found with "
                f"{n} samples; BH (padj) is less strict, and empirical-Bayes moderation "
                "(--ebayes) adds residual df.",
            )
        )
    order = {"error": 0, "warning": 1, "note": 2}
    return sorted(findings, key=lambda f: order[f.level])


def format_advice(findings: Sequence[Finding]) -> list[str]:
    """One printable line per finding: ``"warning [few-levels]: ..."``."""
    return [f"{f.level} [{f.code}]: {f.message}" for f in findings]
