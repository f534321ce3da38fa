"""Fit a designed-experiment model to every gene: formula in, tidy tables out.

:func:`fit_design` is the Python entry point behind ``exprlmm design``: it builds the design
from the formula and the sample sheet, fits every gene (:mod:`.reml`), tests the requested
fixed terms with Satterthwaite df (:mod:`.inference`), optionally moderates the residual
variances across genes (:mod:`.ebayes`), and returns the per-gene × term table, the per-gene
variance components and the design advice (:mod:`.advice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from exprlmm.assoc.designs.advice import Finding, design_advice
from exprlmm.assoc.designs.formula import Design, build_design
from exprlmm.assoc.designs.inference import term_tests
from exprlmm.assoc.designs.reml import VarianceFit, fit_variance_components
from exprlmm.errors import UserInputError

__all__ = ["DesignResult", "fit_design", "resolve_tests"]


@dataclass(frozen=True)
class DesignResult:
    """Result of :func:`fit_design`.

    Attributes
    ----------
    table
        One row per gene × tested term: ``gene term beta se df stat pvalue padj ndf test``
        (see :func:`exprlmm.assoc.designs.inference.term_tests`), plus ``singular``.
    variance
        One row per gene: ``gene``, ``sigma2_residual``, ``sigma2_<factor>`` per random
        intercept, ``singular``, ``loglik`` (REML or ML).
    design
        The design built from the formula.
    advice
        Design findings (plain language).
    tested
        The tested terms.
    settings
        Options used (for the run record).
    """

    table: pd.DataFrame
    variance: pd.DataFrame
    design: Design
    advice: tuple[Finding, ...]
    tested: tuple[str, ...]
    settings: dict = field(default_factory=dict)


def resolve_tests(design: Design, test: Sequence[str] | None) -> tuple[str, ...]:
    """The fixed terms to test: ``test`` checked against the design, default all but intercept.

    A name may be a term (``weight``, ``treatment``, ``weight:urea``) or a data variable that
    appears in exactly one term (``group`` for ``C(group)``).
    """
    if not test:
        tested = design.tested_terms_default
        if not tested:
            raise UserInputError(
                f"--formula {design.spec.text!r} has no fixed term besides the intercept, so "
                "there is nothing to test; add the covariate(s) of interest, e.g. "
                "'~ weight + urea + (1|group)'"
            )
        return tested
    out = []
    for name in test:
        if name in design.terms:
            out.append(name)
            continue
        matches = [t for t in design.terms if t != "1" and name in _term_variables(t)]
        if len(matches) == 1:
            out.append(matches[0])
            continue
        known = ", ".join(t for t in design.terms if t != "1")
        raise UserInputError(
            f"--test {name!r} is not a fixed term of the formula; terms are: {known}"
        )
    return tuple(dict.fromkeys(out))


def _term_variables(term: str) -> set[str]:
    import re

    return set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", term))


def fit_design(
    expression: pd.DataFrame,
    samples: pd.DataFrame,
    formula: str,
    *,
    test: Sequence[str] | None = None,
    weights: pd.DataFrame | np.ndarray | None = None,
    method: Literal["reml", "ml"] = "reml",
    ebayes: bool = False,
) -> DesignResult:
    r"""Fit ``gene ~ formula`` for every gene (samples × genes) and test fixed terms.

    Parameters
    ----------
    expression
        Samples × genes (log scale, e.g. logCPM), index = sample IDs in ``samples`` order.
    samples
        Sample sheet rows for the same samples (same index).
    formula
        lme4-style formula, e.g. ``"~ weight + urea + (1|group)"``.
    test
        Terms to test (default: every fixed term but the intercept).
    weights
        Optional samples × genes precision weights (e.g. from
        :func:`exprlmm.assoc.designs.counts.voom`).
    method
        ``"reml"`` (default; Satterthwaite as lmerTest) or ``"ml"``.
    ebayes
        Moderate the residual variances across genes (limma's ``squeezeVar``) before testing;
        see :func:`exprlmm.assoc.designs.ebayes.moderate_fit`.

    Returns
    -------
    DesignResult
    """
    if not expression.index.equals(samples.index):
        raise ValueError("expression and samples must share the same index (sample IDs)")
    design = build_design(formula, samples)
    n, p = design.x.shape
    if np.linalg.matrix_rank(design.x) < p:
        raise UserInputError(
            f"--formula {formula!r}: the fixed-effect columns are collinear "
            f"({', '.join(design.columns)}); drop a redundant term"
        )
    if n - p < 1:
        raise UserInputError(
            f"--formula {formula!r}: {p} fixed effects for {n} samples leave no residual "
            "degrees of freedom; drop terms"
        )
    tested = resolve_tests(design, test)
    genes = [str(g) for g in expression.columns]
    y = expression.to_numpy(dtype=np.float64)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != y.shape:
            raise ValueError(f"weights have shape {w.shape}, expression {y.shape}")
    fit = fit_variance_components(y, design.x, design.kernels, weights=w, method=method)
    if ebayes:
        from exprlmm.assoc.designs.ebayes import moderate_fit

        fit, prior = moderate_fit(fit, n_samples=n)
    else:
        prior = None
    table = term_tests(fit, design.terms, tested=tested, genes=genes)
    singular = np.tile(fit.singular, len(tested))
    table["singular"] = singular
    variance = _variance_frame(fit, design, genes)
    advice = design_advice(samples, design.spec, n_genes=len(genes), tested=tested, n_fixed=p)
    settings = {"formula": formula, "test": list(tested), "method": method, "ebayes": ebayes}
    if prior is not None:
        settings["ebayes_prior"] = prior
    return DesignResult(table, variance, design, tuple(advice), tested, settings)


def _variance_frame(fit: VarianceFit, design: Design, genes: list[str]) -> pd.DataFrame:
    data = {"gene": genes, "sigma2_residual": fit.sigma2[:, 0]}
    for k, name in enumerate(design.random, start=1):
        data[f"sigma2_{name}"] = fit.sigma2[:, k]
    data["singular"] = fit.singular
    data["loglik"] = fit.loglik
    return pd.DataFrame(data)
