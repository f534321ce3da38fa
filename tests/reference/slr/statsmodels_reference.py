"""statsmodels OLS cross-check of the R lm() reference (all 300 genes).

Run from the repository root, after ``Rscript tests/reference/slr/lm_reference.R``::

    /tmp/refenv/bin/python tests/reference/slr/statsmodels_reference.py

Same models as lm_reference.R (nocov: y ~ 1 + x_k; cov: y ~ 1 + purity + group_B + x_k),
same columns.  Writes statsmodels_nocov.tsv, statsmodels_cov.tsv and slr_checks.txt
(max absolute / relative differences against lm_nocov.tsv and lm_cov.tsv).
"""

from __future__ import annotations

import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

HERE = Path(__file__).resolve().parent
LMM = HERE.parent / "lmm"


def main() -> None:
    expr = pd.read_csv(LMM / "expression.tsv", sep="\t", index_col=0)
    samples = pd.read_csv(LMM / "samples.tsv", sep="\t", index_col=0)
    assert list(expr.index) == list(samples.index)
    y = samples["y"].to_numpy(dtype=float)
    n = y.shape[0]
    lines = []
    for tag, covs in [("nocov", []), ("cov", ["purity", "group_B"])]:
        rows = []
        for gene in expr.columns:
            x = np.column_stack(
                [np.ones(n), *(samples[c].to_numpy(dtype=float) for c in covs), expr[gene]]
            )
            res = sm.OLS(y, x).fit()
            t = float(res.tvalues[-1])
            df = int(res.df_resid)
            logp = float(np.log(2) + stats.t.logsf(abs(t), df))
            rows.append(
                {
                    "gene": gene,
                    "coef": float(res.params[-1]),
                    "se": float(res.bse[-1]),
                    "t": t,
                    "df": df,
                    "pvalue": float(res.pvalues[-1]),
                    "neglog10p": -logp / np.log(10),
                    "sigma": float(np.sqrt(res.scale)),
                }
            )
        out = pd.DataFrame(rows)
        out.to_csv(HERE / f"statsmodels_{tag}.tsv", sep="\t", index=False, float_format="%.17g")
        ref = pd.read_csv(HERE / f"lm_{tag}.tsv", sep="\t")
        assert list(ref["gene"]) == list(out["gene"])
        assert (ref["df"] == out["df"]).all()
        for col in ["coef", "se", "t", "pvalue", "neglog10p", "sigma"]:
            a, b = ref[col].to_numpy(), out[col].to_numpy()
            lines.append(
                f"{tag} {col}: max abs diff R vs statsmodels = {np.max(np.abs(a - b)):.3e}, "
                f"max rel diff = {np.max(np.abs(a - b) / np.abs(a)):.3e}"
            )
    vers = ", ".join(f"{p} {version(p)}" for p in ["statsmodels", "numpy", "scipy", "pandas"])
    lines.append(f"python {platform.python_version()}; {vers}")
    (HERE / "slr_checks.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
