r"""Model formulas for designed experiments: a fixed part (formulaic) and random intercepts.

A formula such as ``"~ weight + urea + (1|group)"`` is split into

* the **fixed part** ``~ weight + urea``, turned into the design matrix ``X`` by
  `formulaic <https://matthewwardrop.github.io/formulaic/>`_ (numeric and categorical
  variables, interactions ``a:b``/``a*b``, ``scale()``, ``C()``; treatment contrasts with an
  intercept, as R's ``model.matrix``);
* **random intercepts** in lme4 syntax: ``(1|g)`` gives a grouping factor with indicator
  matrix ``Z`` (``N × levels``) and covariance ``σ_g² K`` with :math:`K = Z Z^\top`;
  crossed factors are written ``(1|a) + (1|b)`` and nested ones ``(1|a/b)``
  (:math:`\equiv` ``(1|a) + (1|a:b)``). Random slopes ``(x|g)`` are not supported.

A left-hand side (``Gene.X ~ ...``) is ignored: every gene is the response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from exprlmm.errors import UserInputError

__all__ = ["Design", "RandomIntercept", "build_design", "parse_formula"]

_RANDOM_RE = re.compile(r"\(\s*([^()|]*?)\s*\|\s*([^()|]+?)\s*\)")
_NAME_RE = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class RandomIntercept:
    """A random intercept ``(1|factor)``; ``factors`` has one name, or several for ``a:b``."""

    factors: tuple[str, ...]

    @property
    def name(self) -> str:
        return ":".join(self.factors)


@dataclass(frozen=True)
class FormulaSpec:
    """A parsed formula: the fixed-part formula text and the random intercepts."""

    text: str
    fixed: str
    random: tuple[RandomIntercept, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        """Grouping-factor variable names used by the random part."""
        names: list[str] = []
        for term in self.random:
            for factor in term.factors:
                if factor not in names:
                    names.append(factor)
        return tuple(names)


def parse_formula(formula: str) -> FormulaSpec:
    """Split an lme4-style formula into its fixed part and its random intercepts.

    Parameters
    ----------
    formula
        e.g. ``"~ weight + urea + (1|group)"``, ``"~ treatment + (1|batch) + (1|litter)"``,
        ``"~ x + (1|site/animal)"``.

    Raises
    ------
    UserInputError
        For an empty formula, a random slope ``(x|g)`` or a malformed grouping factor.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise UserInputError("--formula is empty; give e.g. '~ weight + urea + (1|group)'")
    text = formula.strip()
    rhs = text.split("~", 1)[1] if "~" in text else text
    random: list[RandomIntercept] = []
    for match in _RANDOM_RE.finditer(rhs):
        slope, group = match.group(1).strip(), match.group(2).strip()
        if slope not in ("1",):
            raise UserInputError(
                f"--formula {formula!r}: only random intercepts (1|g) are supported, got "
                f"({slope}|{group}); write the slope variable as a fixed effect instead"
            )
        parts = [p.strip() for p in group.split("/")]
        for k in range(1, len(parts) + 1):
            factors = []
            for part in parts[:k]:
                factors.extend(f.strip() for f in part.split(":"))
            if not all(_NAME_RE.match(f) for f in factors):
                raise UserInputError(
                    f"--formula {formula!r}: grouping factor {group!r} must be column names "
                    "joined by ':' or '/', e.g. (1|group) or (1|site/animal)"
                )
            term = RandomIntercept(tuple(factors))
            if term not in random:
                random.append(term)
    fixed = _RANDOM_RE.sub(" ", rhs)
    fixed = re.sub(r"\+\s*(?=\+|$)", "", fixed.strip())
    fixed = re.sub(r"^\s*\+", "", fixed).strip()
    fixed = re.sub(r"\+\s*\+", "+", fixed).strip().rstrip("+").strip()
    if "|" in fixed:
        raise UserInputError(
            f"--formula {formula!r}: could not read a random term; write it as (1|g)"
        )
    return FormulaSpec(text=text, fixed=fixed or "1", random=tuple(random))


@dataclass(frozen=True)
class Design:
    r"""A design built from a formula and a sample sheet.

    Attributes
    ----------
    x
        ``N × p`` fixed-effects design matrix (float64).
    columns
        Names of the columns of ``x`` (formulaic's, e.g. ``Intercept``, ``weight``, ``g[T.b]``).
    terms
        Fixed term name → indices of its columns in ``x`` (the intercept term is ``"1"``).
    random
        Random-intercept name → ``N × levels`` indicator matrix ``Z``.
    levels
        Random-intercept name → its level labels (sorted).
    spec
        The parsed formula.
    """

    x: np.ndarray
    columns: tuple[str, ...]
    terms: dict[str, tuple[int, ...]]
    random: dict[str, np.ndarray]
    levels: dict[str, tuple[str, ...]]
    spec: FormulaSpec

    @property
    def kernels(self) -> tuple[np.ndarray, ...]:
        r""":math:`K_j = Z_j Z_j^\top` for each random intercept, in formula order."""
        return tuple(z @ z.T for z in self.random.values())

    @property
    def tested_terms_default(self) -> tuple[str, ...]:
        """Every fixed term but the intercept."""
        return tuple(t for t in self.terms if t != "1")


def _group_labels(samples: pd.DataFrame, term: RandomIntercept) -> pd.Series:
    cols = [samples[f].astype(str) for f in term.factors]
    labels = cols[0]
    for col in cols[1:]:
        labels = labels + ":" + col
    return labels


def build_design(formula: str | FormulaSpec, samples: pd.DataFrame) -> Design:
    """Build ``X`` and the random-intercept indicators from a sample sheet.

    Parameters
    ----------
    formula
        Formula text (see :func:`parse_formula`) or a parsed :class:`FormulaSpec`.
    samples
        One row per sample, in the order of the expression matrix.

    Raises
    ------
    UserInputError
        Unknown variables, missing values in used columns, a grouping factor with one level,
        or a fixed part formulaic cannot build.
    """
    import formulaic

    spec = parse_formula(formula) if isinstance(formula, str) else formula
    columns = list(samples.columns)
    for name in spec.variables:
        if name not in samples.columns:
            raise UserInputError(
                f"--formula: grouping factor {name!r} is not a column of the sample sheet; "
                f"columns are: {', '.join(map(str, columns))}"
            )
    try:
        matrix = formulaic.model_matrix(
            _quote_names(spec.fixed, samples), samples, na_action="raise"
        )
    except Exception as err:  # formulaic raises several types for unknown names/syntax
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        unknown = _unknown_names(spec.fixed, samples)
        if unknown:
            message = (
                f"variable(s) {', '.join(unknown)} not in the sample sheet; columns are: "
                f"{', '.join(map(str, columns))}"
            )
        raise UserInputError(f"--formula {spec.text!r}: {message}") from None
    x = np.asarray(matrix, dtype=np.float64)
    names = tuple(str(c).replace("`", "") for c in matrix.columns)
    terms = {
        str(t).replace("`", ""): tuple(int(i) for i in idx)
        for t, idx in matrix.model_spec.term_indices.items()
    }
    random: dict[str, np.ndarray] = {}
    levels: dict[str, tuple[str, ...]] = {}
    for term in spec.random:
        raw = samples[list(term.factors)]
        if raw.isna().any().any():
            raise UserInputError(
                f"--formula: grouping factor {term.name!r} has missing values; fill them in "
                "or drop those samples from the sheet"
            )
        labels = _group_labels(samples, term)
        uniq = tuple(sorted(labels.unique()))
        if len(uniq) < 2:
            raise UserInputError(
                f"--formula: grouping factor {term.name!r} has one level ({uniq[0]!r}); a random "
                "intercept needs at least 2 levels (5 or more to estimate its variance)"
            )
        z = (labels.to_numpy()[:, None] == np.asarray(uniq, dtype=object)[None, :]).astype(float)
        random[term.name] = z
        levels[term.name] = uniq
    return Design(x=x, columns=names, terms=terms, random=random, levels=levels, spec=spec)


def _quote_names(fixed: str, samples: pd.DataFrame) -> str:
    """Back-quote column names that are not Python identifiers (``urea.score``) for formulaic.

    Without the quotes ``C(urea.score)`` would be evaluated as an attribute access.
    """
    for name in sorted((str(c) for c in samples.columns), key=len, reverse=True):
        if name.isidentifier() or not _NAME_RE.match(name):
            continue
        pattern = rf"(?<![A-Za-z0-9_.`]){re.escape(name)}(?![A-Za-z0-9_.`])"
        fixed = re.sub(pattern, f"`{name}`", fixed)
    return fixed


def _unknown_names(fixed: str, samples: pd.DataFrame) -> list[str]:
    functions = {"scale", "center", "C", "log", "exp", "np", "I", "poly", "sqrt", "abs"}
    tokens = re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", fixed)
    return sorted(
        {t for t in tokens if t not in samples.columns and t not in functions and t != "T"}
    )
