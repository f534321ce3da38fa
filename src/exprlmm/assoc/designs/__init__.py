"""Designed experiments: per-gene mixed models from formulas (gene as the response).

* :mod:`.formula` — lme4-style formulas: fixed part via formulaic, random intercepts ``(1|g)``.
* :mod:`.reml` — per-gene REML/ML fits of the variance components, vectorised over genes.
* :mod:`.inference` — Satterthwaite t and F tests (as lmerTest), singular-fit fall-back.
* :mod:`.ebayes` — limma's empirical-Bayes moderation of residual variances.
* :mod:`.counts` — edgeR TMM / filterByExpr and limma voom weights for RNA-seq counts.
* :mod:`.advice` — plain-language design checks.
* :mod:`.negbin` — negative-binomial GLMs (edgeR-style offsets, Cox–Reid dispersions, LRT).
* :mod:`.api` — :func:`fit_design` and :func:`fit_design_negbin`, behind ``exprlmm design``.
"""

from exprlmm.assoc.designs.advice import Finding, design_advice, format_advice
from exprlmm.assoc.designs.api import DesignResult, fit_design, fit_design_negbin
from exprlmm.assoc.designs.formula import Design, build_design, parse_formula
from exprlmm.assoc.designs.reml import VarianceFit, fit_variance_components

__all__ = [
    "Design",
    "DesignResult",
    "Finding",
    "VarianceFit",
    "build_design",
    "design_advice",
    "fit_design",
    "fit_design_negbin",
    "fit_variance_components",
    "format_advice",
    "parse_formula",
]
