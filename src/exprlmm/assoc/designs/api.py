"""Fit a designed-experiment model to every gene: formula in, tidy tables out.

:func:`fit_design` is the Python entry point behind ``exprlmm design``: it builds the design
from the formula and the sample sheet, fits every gene (:mod:`.reml`), tests the requested
fixed terms with Satterthwaite df (:mod:`.inference`), optionally moderates the residual
variances across genes (:mod:`.ebayes`), and returns the per-gene × term table, the per-gene
variance components and the design advice (:mod:`.advice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from exprlmm.assoc.designs.advice import Finding, design_advice
from exprlmm.assoc.designs.formula import Design, build_design
from exprlmm.assoc.designs.inference import term_tests
from exprlmm.assoc.designs.reml import (
    VarianceFit,
    consensus_ratios,
    fit_fixed_ratios,
    fit_variance_components,
)
from exprlmm.errors import UserInputError

__all__ = ["DesignResult", "fit_design", "fit_design_negbin", "resolve_tests"]


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
        intercept, ``singular``, ``converged`` (False: the iteration hit its limit; treat the
        gene's result with caution), ``loglik`` (REML or ML).
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


def _check_fixed_part(design, formula: str) -> tuple[int, int]:
    """``(n, p)`` of the fixed design; a user error when it is collinear or leaves no df."""
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
    return n, p


def fit_design(
    expression: pd.DataFrame,
    samples: pd.DataFrame,
    formula: str,
    *,
    test: Sequence[str] | None = None,
    weights: pd.DataFrame | np.ndarray | None = None,
    method: Literal["reml", "ml"] = "reml",
    ebayes: bool = True,
    variance: Literal["gene", "consensus"] = "consensus",
    ddf: Literal["satterthwaite", "kenward-roger"] = "satterthwaite",
    lrt: bool = False,
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
        Moderate the residual variances across genes (limma's ``squeezeVar``) before testing
        (default); see :func:`exprlmm.assoc.designs.ebayes.moderate_fit`.
    variance
        ``"consensus"`` (default) or ``"gene"``. ``"gene"``: each gene's own REML variance components, Satterthwaite df (as
        lmer/lmerTest or dream). ``"consensus"``: the variance ratios are fitted per gene, then
        pooled across genes (:func:`~exprlmm.assoc.designs.reml.consensus_ratios`, as limma's
        ``duplicateCorrelation``) and every gene is refitted by GLS with them (df ``N − p``);
        ``singular`` then reports each gene's own per-gene fit. Better calibrated when a
        grouping factor has few levels (docs/designs.md). ``variance="gene", ebayes=False``
        reproduces lmer + lmerTest gene by gene.
    ddf
        ``"satterthwaite"`` (default) or ``"kenward-roger"`` (pbkrtest's adjusted covariance
        and df; needs ``variance="gene"``, ``ebayes=False`` and a REML fit).
    lrt
        Likelihood-ratio tests instead of Wald tests: for each tested term the model is refitted
        by ML without the term's columns, :math:`\chi^2 = 2(\ell_1 - \ell_0)` on the number of
        columns (as ``anova(reduced, full)`` in lme4); ``beta``/``se`` come from the ML fit.
        Needs ``variance="gene"`` and ``ebayes=False``.

    Returns
    -------
    DesignResult
    """
    if not expression.index.equals(samples.index):
        raise ValueError("expression and samples must share the same index (sample IDs)")
    design = build_design(formula, samples)
    n, p = _check_fixed_part(design, formula)
    tested = resolve_tests(design, test)
    genes = [str(g) for g in expression.columns]
    y = expression.to_numpy(dtype=np.float64)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != y.shape:
            raise ValueError(f"weights have shape {w.shape}, expression {y.shape}")
    if ddf not in ("satterthwaite", "kenward-roger"):
        raise UserInputError(f"--ddf {ddf!r}: use satterthwaite or kenward-roger")
    if ddf == "kenward-roger" and (variance != "gene" or ebayes or method != "reml"):
        raise UserInputError(
            "--ddf kenward-roger needs per-gene REML fits without moderation: add "
            "--variance gene --no-ebayes --reml"
        )
    if lrt and (variance != "gene" or ebayes or ddf != "satterthwaite"):
        raise UserInputError(
            "--lrt compares per-gene ML fits: add --variance gene --no-ebayes (and no --ddf)"
        )
    if lrt:
        method = "ml"
    if variance not in ("gene", "consensus"):
        raise UserInputError(f"--variance {variance!r}: use gene or consensus")
    fit = fit_variance_components(y, design.x, design.kernels, weights=w, method=method)
    consensus = None
    if variance == "consensus" and design.kernels:
        consensus = consensus_ratios(fit)
        own_singular = fit.singular
        fit = fit_fixed_ratios(y, design.x, design.kernels, consensus, weights=w, method=method)
        fit = replace(fit, singular=own_singular)
    if ebayes:
        from exprlmm.assoc.designs.ebayes import moderate_fit

        fit, prior = moderate_fit(fit, n_samples=n)
    else:
        prior = None
    test_fn = None
    if ddf == "kenward-roger":
        from exprlmm.assoc.designs.kenward_roger import kenward_roger_test

        def test_fn(contrast):
            return kenward_roger_test(fit, design.x, design.kernels, contrast, weights=w)

    table = term_tests(fit, design.terms, tested=tested, genes=genes, test_fn=test_fn)
    if lrt:
        table = _likelihood_ratio(table, fit, design, y, w, tested)
    singular = np.tile(fit.singular, len(tested))
    table["singular"] = singular
    components = _variance_frame(fit, design, genes)
    advice = design_advice(samples, design.spec, n_genes=len(genes), tested=tested, n_fixed=p)
    settings = {
        "formula": formula,
        "test": list(tested),
        "method": method,
        "ebayes": ebayes,
        "variance": variance,
        "ddf": ddf,
        "lrt": lrt,
    }
    if consensus is not None:
        settings["consensus_ratios"] = dict(zip(design.random, consensus.tolist(), strict=True))
    if prior is not None:
        settings["ebayes_prior"] = prior
    return DesignResult(table, components, design, tuple(advice), tested, settings)


def _likelihood_ratio(table, fit, design, y, w, tested) -> pd.DataFrame:
    """Replace the Wald statistics of ``table`` by ML likelihood-ratio tests, term by term."""
    from scipy import stats

    from exprlmm.assoc._common import benjamini_hochberg

    table = table.copy()
    p = design.x.shape[1]
    for term in tested:
        drop = set(design.terms[term])
        keep = [j for j in range(p) if j not in drop]
        reduced = fit_variance_components(
            y, design.x[:, keep], design.kernels, weights=w, method="ml"
        )
        stat = np.maximum(2.0 * (fit.loglik - reduced.loglik), 0.0)
        rows = table["term"] == term
        q = float(len(drop))
        pvalue = stats.chi2.sf(stat, q)
        table.loc[rows, "stat"] = stat
        table.loc[rows, "df"] = q
        table.loc[rows, "ndf"] = q
        table.loc[rows, "pvalue"] = pvalue
        table.loc[rows, "padj"] = benjamini_hochberg(pvalue)
        table.loc[rows, "test"] = "LRT"
    return table


def _variance_frame(fit: VarianceFit, design: Design, genes: list[str]) -> pd.DataFrame:
    data = {"gene": genes, "sigma2_residual": fit.sigma2[:, 0]}
    for k, name in enumerate(design.random, start=1):
        data[f"sigma2_{name}"] = fit.sigma2[:, k]
    data["singular"] = fit.singular
    data["converged"] = fit.converged if fit.converged is not None else True
    data["loglik"] = fit.loglik
    return pd.DataFrame(data)


def fit_design_negbin(
    counts: pd.DataFrame,
    samples: pd.DataFrame,
    formula: str,
    *,
    test: Sequence[str] | None = None,
    lib_size: np.ndarray | None = None,
    prior_df: float = 10.0,
    test_method: Literal["ql", "lrt"] = "ql",
) -> DesignResult:
    r"""Negative-binomial GLM per gene for a fixed-effects design (edgeR-style), one test per term.

    :math:`y_{gi} \sim \mathrm{NB}(\mu_{gi}, \phi_g)`, :math:`\log\mu_{gi} = \log L_i + x_i^\top
    \beta_g` with effective library sizes :math:`L_i` (library size × TMM factor).

    * ``test_method="ql"`` (default; edgeR 3.40 ``estimateGLMCommonDisp`` + ``glmQLFit`` +
      ``glmQLFTest``): one common Cox–Reid dispersion
      (:func:`~exprlmm.assoc.designs.negbin.common_dispersion`), QL dispersions
      :math:`s^2_g = D_g/d_g` squeezed towards an abundance trend (limma ``squeezeVar``,
      covariate = average log2 CPM), and per term :math:`F = LR/(q\,\tilde s^2_g)` on
      :math:`(q, d_0 + d_g)` df with edgeR's Poisson bound
      (:func:`~exprlmm.assoc.designs.negbin.nb_ql_ftest`).
    * ``test_method="lrt"`` (edgeR ``glmLRT``): per-gene Cox–Reid dispersions shrunk to the
      common one with ``prior_df`` (:func:`~exprlmm.assoc.designs.negbin.estimate_dispersion`)
      and :math:`LR = D_0 - D_1` on the term's number of columns (:math:`\chi^2`).

    ``beta`` is the full model's coefficient on the log2 scale; ``se`` its Wald SE,
    :math:`\sqrt{[(X^\top W X)^{-1}]_{jj}}/\log 2`, multiplied by :math:`\tilde s_g` for the
    QL test (NaN for multi-column terms).

    Parameters
    ----------
    counts
        Samples × genes raw counts (index = sample IDs in ``samples`` order).
    samples
        Sample sheet rows for the same samples.
    formula
        Fixed-effects formula, e.g. ``"~ weight + urea + C(group)"``; random intercepts are
        refused (use the voom + mixed-model path).
    test
        Terms to test (default: every fixed term but the intercept).
    lib_size
        Effective library sizes (default: column sums of ``counts``).
    prior_df
        LRT only: prior df of the dispersion shrinkage towards the common dispersion (default
        10, as edgeR's ``prior.df``; 0: each gene's own Cox–Reid estimate, anti-conservative
        at N = 10, see docs/designs.md).
    test_method
        ``"ql"`` (quasi-likelihood F, default) or ``"lrt"`` (likelihood ratio).

    Returns
    -------
    DesignResult
        ``table`` with ``test`` = ``"F"`` (``stat`` = F, ``df`` = denominator df
        :math:`d_0 + d_g`, ``ndf`` = number of columns) or ``"LRT"`` (``stat`` = LR, ``df`` =
        ``ndf`` = number of columns); ``variance`` with ``dispersion``, ``singular`` (always
        False), ``converged``, ``loglik`` (the Cox–Reid adjusted profile log-likelihood at the
        dispersion) and, for QL, ``ql_dispersion`` (:math:`s^2_g`), ``ql_dispersion_post``
        (:math:`\tilde s^2_g`), ``ql_df_residual`` (:math:`d_g`, adjusted for exact zeros).
    """
    from exprlmm.assoc._common import benjamini_hochberg
    from exprlmm.assoc.designs import negbin as nb

    if test_method not in ("ql", "lrt"):
        raise UserInputError(f"--nb-test {test_method!r}: use ql or lrt")
    if not counts.index.equals(samples.index):
        raise ValueError("counts and samples must share the same index (sample IDs)")
    design = build_design(formula, samples)
    if design.random:
        raise UserInputError(
            f"--formula {formula!r}: --family negbin fits fixed-effects designs only; for "
            "random intercepts use the default voom + mixed model (drop --family negbin), or "
            "make the grouping a fixed effect, e.g. C(group)"
        )
    _, p = _check_fixed_part(design, formula)
    tested = resolve_tests(design, test)
    genes = [str(g) for g in counts.columns]
    y = counts.to_numpy(dtype=np.float64)
    lib = y.sum(axis=1) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    offset = np.log(lib)
    ql = None
    if test_method == "ql":
        common = nb.common_dispersion(y, design.x, offset)
        dispersion = np.full(len(genes), common)
        fit = nb.fit_nb_glm(y, design.x, offset, dispersion)
        abundance = nb.ave_log_cpm(y, lib, dispersion=common)
        ql = nb.nb_ql_fit(y, design.x, offset, dispersion, abundance=abundance, fit=fit)
        loglik = nb.apl_at_fit(y, design.x, fit, dispersion)
    else:
        disp = nb.estimate_dispersion(y, design.x, offset, prior_df=prior_df)
        dispersion, loglik = disp.dispersion, disp.apl
        fit = nb.fit_nb_glm(y, design.x, offset, dispersion)
    ln2 = np.log(2.0)
    frames = []
    n_below = 0
    for term in tested:
        cols = list(design.terms[term])
        q = float(len(cols))
        if ql is not None:
            res = nb.nb_ql_ftest(y, design.x, offset, ql, cols)
            df, kind = res["df"], "F"
            n_below = int(res["below_poisson"].sum())
            scale = np.sqrt(ql.var_post)
        else:
            res = nb.nb_lrt(y, design.x, offset, dispersion, cols, full=fit)
            df, kind = q, "LRT"
            scale = 1.0
        if len(cols) == 1:
            beta = fit.beta[:, cols[0]] / ln2
            se = np.sqrt(fit.cov[:, cols[0], cols[0]]) * scale / ln2
        else:
            beta = se = np.full(len(genes), np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "gene": genes,
                    "term": term,
                    "beta": beta,
                    "se": se,
                    "df": df,
                    "stat": res["stat"],
                    "pvalue": res["pvalue"],
                    "padj": benjamini_hochberg(res["pvalue"]),
                    "ndf": q,
                    "test": kind,
                    "singular": False,
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    variance = pd.DataFrame(
        {
            "gene": genes,
            "dispersion": dispersion,
            "singular": False,
            "converged": fit.converged,
            "loglik": loglik,
        }
    )
    advice = design_advice(samples, design.spec, n_genes=len(genes), tested=tested, n_fixed=p)
    settings = {
        "formula": formula,
        "test": list(tested),
        "family": "negbin",
        "nb_test": test_method,
    }
    if ql is not None:
        variance["ql_dispersion"] = ql.s2
        variance["ql_dispersion_post"] = ql.var_post
        variance["ql_df_residual"] = ql.df_residual
        settings |= {
            "dispersion_method": "common Cox-Reid dispersion (edgeR estimateGLMCommonDisp)",
            "dispersion_common": float(dispersion[0]) if len(genes) else float("nan"),
            "dispersion_median": float(np.median(dispersion)),
            "test_method": "quasi-likelihood F (edgeR glmQLFit + glmQLFTest; QL dispersions "
            "squeezed to an AveLogCPM trend, limma squeezeVar, robust = FALSE)",
            "ql_df_prior": ql.df_prior,
            "ql_prior_median": float(np.median(ql.var_prior)),
            "ql_below_poisson_bound": n_below,
        }
    else:
        settings |= {
            "dispersion_method": disp.method,
            "dispersion_bounds": list(disp.bounds),
            "dispersion_prior_df": disp.prior_df,
            "dispersion_median": float(np.median(dispersion)),
            "dispersion_at_lower_bound": int(disp.at_lower_bound.sum()),
            "test_method": "likelihood-ratio (edgeR glmLRT) at the gene's dispersion",
        }
    settings["beta_scale"] = "log2"
    return DesignResult(table, variance, design, tuple(advice), tested, settings)
