"""`lmm_scan_traits` (one rotation of each gene block for every trait) against `lmm_scan`.

The reference is `lmm_scan` of each trait alone with the same eigensystem (itself checked
against dense closed forms in test_lmm.py); at a fixed δ it whitens by a Cholesky solve,
so the two paths share no arithmetic beyond the null model and must agree to rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exprlmm.assoc import lmm_scan, lmm_scan_traits
from exprlmm.kinship import eigensystem_from_expression

RNG = np.random.default_rng(23)
N, G = 60, 150
LATENT = RNG.normal(size=(N, 3))
EXPR = LATENT @ RNG.normal(size=(3, G)) + RNG.normal(size=(N, G))
EXPR[:, 7] = 2.5  # a constant gene: NaN in every table
TRAITS = pd.DataFrame(
    {
        "a": LATENT[:, 0] + RNG.normal(size=N),
        "b": LATENT[:, 1] - LATENT[:, 2] + 0.5 * RNG.normal(size=N),
        "c": RNG.normal(size=N),
    }
)
COV = RNG.normal(size=(N, 1))


def _neglog(p):
    return -np.log10(np.asarray(p, dtype=float))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"delta": "refit"},
        {"delta": 0.6, "leave_out": "gene"},
        {"method": "ml", "test": "lrt"},
        {"covariates": COV},
        {"rank": 12},
    ],
    ids=["null", "refit", "fixed-leave-out", "ml-lrt", "covariate", "low-rank"],
)
def test_each_trait_equals_its_own_scan(kwargs):
    kwargs = dict(kwargs)
    rank = kwargs.pop("rank", None)
    varies = np.ptp(EXPR, axis=0) > 0
    eig = eigensystem_from_expression(EXPR[:, varies], rank=rank)
    mask = varies if kwargs.get("leave_out") == "gene" else None
    tables = lmm_scan_traits(
        EXPR, TRAITS, eigensystem=eig, kinship_genes=mask, chunk_size=40, **kwargs
    )
    assert list(tables) == ["a", "b", "c"]
    for name, table in tables.items():
        alone = lmm_scan(EXPR, TRAITS[name], eigensystem=eig, kinship_genes=mask, **kwargs)
        assert table["gene"].tolist() == alone["gene"].tolist()
        ok = alone["pvalue"].notna()
        assert table["pvalue"].notna().tolist() == ok.tolist()
        assert not ok.iloc[7]
        diff = np.abs(_neglog(table.loc[ok, "pvalue"]) - _neglog(alone.loc[ok, "pvalue"]))
        assert diff.max() <= 1e-8, (name, diff.max())
        for column in ("beta", "se", "delta"):
            np.testing.assert_allclose(table[column], alone[column], rtol=1e-7, err_msg=column)
        ours, theirs = table.attrs["null_model"], alone.attrs["null_model"]
        assert (ours.delta, ours.loglik) == (theirs.delta, theirs.loglik)


def test_builds_the_kinship_once_from_the_chosen_genes():
    mask = np.zeros(G, dtype=bool)
    mask[::2] = True
    mask[7] = False
    tables = lmm_scan_traits(EXPR, {"a": TRAITS["a"].to_numpy()}, kinship_genes=mask)
    alone = lmm_scan(EXPR, TRAITS["a"].to_numpy(), kinship_genes=mask)
    ok = alone["pvalue"].notna()
    diff = np.abs(_neglog(tables["a"].loc[ok, "pvalue"]) - _neglog(alone.loc[ok, "pvalue"]))
    assert diff.max() <= 1e-8


def test_no_traits_is_an_error():
    with pytest.raises(ValueError, match="no traits"):
        lmm_scan_traits(EXPR, {})
