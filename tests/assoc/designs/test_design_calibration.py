"""Calibration on a seeded negative-binomial simulation of the mouse design (one replicate).

The simulation (tests/reference/designs/calibration.py, seed 1000): 2,000 genes × 10 animals,
a group random intercept in every gene, 120 weight- and 120 urea-associated genes. The
default analysis (voom weights, consensus group correlation, empirical Bayes) must keep the
share of null genes at p < 0.05 ≤ 0.065 and the FDP at BH 5 % ≤ 0.10 for both covariates,
with power at least that of limma-voom with the group as a fixed effect; per-gene REML +
Satterthwaite (lmer/lmerTest on voom) is measurably anti-conservative on the same data.
"""

import numpy as np
import pandas as pd
import pytest

from exprlmm.assoc.designs.api import fit_design
from exprlmm.assoc.designs.counts import voom
from exprlmm.assoc.designs.formula import build_design


@pytest.fixture(scope="module")
def results(calibration_replicate):
    rep = calibration_replicate
    mouse, c, lib = rep.mouse, rep.counts, rep.lib_size
    genes = [f"g{i}" for i in range(c.shape[1])]
    out = {}
    runs = {
        "default": ("~ weight + urea + (1|group)", {}),
        "lmertest": ("~ weight + urea + (1|group)", {"variance": "gene", "ebayes": False}),
        "limma_fixed": ("~ weight + urea + C(group)", {}),
    }
    for name, (formula, options) in runs.items():
        design = build_design(formula, mouse)
        v = voom(c, design.x, lib_size=lib)
        expr = pd.DataFrame(v.expression, index=mouse.index, columns=genes)
        res = fit_design(
            expr, mouse, formula, weights=v.weights, test=["weight", "urea"], **options
        )
        for term, truth in rep.truth.items():
            part = res.table[res.table.term == term]
            out[name, term] = rep.cal.evaluate(part.pvalue.to_numpy(), part.padj.to_numpy(), truth)
    return out


@pytest.mark.parametrize("term", ["weight", "urea"])
def test_default_is_calibrated(results, term):
    r = results["default", term]
    assert r["null_p05"] <= 0.065
    assert r["fdp"] <= 0.10
    assert r["power"] >= results["limma_fixed", term]["power"]


def test_per_gene_satterthwaite_is_anticonservative(results):
    rates = [results["lmertest", t]["null_p05"] for t in ("weight", "urea")]
    assert np.mean(rates) > 0.065
