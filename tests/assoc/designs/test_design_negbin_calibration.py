"""Calibration of ``--family negbin`` on one replicate of the seeded mouse-design simulation.

Replicate seed 1000 of tests/reference/designs/calibration.py (2,000 genes, a group random
intercept in every gene, 120 weight- and 120 urea-associated genes), low-count filter and TMM
as nb_calibration.py. With the group as a fixed effect the default quasi-likelihood F test
must keep null p < 0.05 ≤ 0.065 and the FDP at BH 5 % ≤ 0.10 for both covariates, while the
LRT at shrunk dispersions (``--nb-test lrt``) exceeds the FDP target on this replicate
(0.18 / 0.25). The QL numbers must equal those of edgeR's own glmQLFit/glmQLFTest at the
common dispersion on the same counts (nb_calibration_peers.tsv, made by
nb_calibration_peers.R with edgeR 3.40.2): null rates to 1e-12, and the same number of BH
calls, FDP and power.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exprlmm.assoc.designs.api import fit_design_negbin

REF = Path(__file__).resolve().parents[2] / "reference" / "designs"


@pytest.fixture(scope="module")
def results(calibration_replicate):
    rep = calibration_replicate
    mouse, c, lib = rep.mouse, rep.counts, rep.lib_size
    frame = pd.DataFrame(c, index=mouse.index, columns=[f"g{i}" for i in range(c.shape[1])])
    runs = {
        "ql_fixed": ("~ weight + urea + C(group)", "ql"),
        "ql_nogroup": ("~ weight + urea", "ql"),
        "lrt_fixed": ("~ weight + urea + C(group)", "lrt"),
    }
    out = {}
    for name, (formula, kind) in runs.items():
        res = fit_design_negbin(
            frame, mouse, formula, test=["weight", "urea"], lib_size=lib, test_method=kind
        )
        for term, truth in rep.truth.items():
            part = res.table[res.table.term == term]
            out[name, term] = rep.cal.evaluate(part.pvalue.to_numpy(), part.padj.to_numpy(), truth)
    return out


@pytest.mark.parametrize("term", ["weight", "urea"])
def test_ql_default_is_calibrated(results, term):
    r = results["ql_fixed", term]
    assert r["null_p05"] <= 0.065
    assert r["fdp"] <= 0.10


def test_lrt_exceeds_the_fdp_target(results):
    assert max(results["lrt_fixed", t]["fdp"] for t in ("weight", "urea")) > 0.10


@pytest.mark.parametrize(("ours", "peer"), [("ql_fixed", "fixed"), ("ql_nogroup", "nogroup")])
@pytest.mark.parametrize("term", ["weight", "urea"])
def test_ql_matches_edger_on_the_same_counts(results, ours, peer, term):
    peers = pd.read_csv(REF / "nb_calibration_peers.tsv", sep="\t")
    row = peers[
        (peers.rep == 0) & (peers.method == f"edgeR_ql_common_{peer}") & (peers.term == term)
    ].iloc[0]
    r = results[ours, term]
    np.testing.assert_allclose(r["null_p05"], row["null_p05"], rtol=0, atol=1e-12)
    assert r["n_hits"] == row["n_hits"]
    np.testing.assert_allclose([r["fdp"], r["power"]], [row["fdp"], row["power"]], atol=1e-12)
