"""Cross-check the dense R LMM reference with an eigendecomposition-based numpy version.

Run from the repository root after dense_lmm.R::

    OPENBLAS_NUM_THREADS=1 /tmp/refenv/bin/python tests/reference/lmm/crosscheck_numpy.py

Recomputes every dense_r_*.tsv row in the rotated basis of DESIGN.md (K = U diag(s) U^T,
w_i = 1/(s_i + delta)) and, for the refit files, re-optimises log(delta) with
scipy's bounded Brent (xatol 1e-12) started from R's bracket.  Writes crosscheck_numpy.txt
with max differences.  Nothing here is used as a reference value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

HERE = Path(__file__).resolve().parent


def main() -> None:
    expr = pd.read_csv(HERE / "expression.tsv", sep="\t", index_col=0)
    samples = pd.read_csv(HERE / "samples.tsv", sep="\t", index_col=0)
    k = pd.read_csv(HERE / "kinship.tsv", sep="\t", index_col=0).to_numpy(dtype=float)
    y = samples["y"].to_numpy(dtype=float)
    n = y.shape[0]
    s, u = np.linalg.eigh(k)
    yt = u.T @ y

    def fit(delta: float, w_mat: np.ndarray) -> dict[str, float]:
        q = w_mat.shape[1]
        wt = u.T @ w_mat
        if np.isinf(delta):
            w = np.ones(n)
            logdet = 0.0
        else:
            w = 1.0 / (s + delta)
            logdet = float(np.sum(np.log(s + delta)))
        a = wt.T @ (w[:, None] * wt)
        ai = np.linalg.inv(a)
        beta = ai @ (wt.T @ (w * yt))
        r = yt - wt @ beta
        rss = float(np.sum(w * r * r))
        ld_a = np.linalg.slogdet(a)[1]
        ld_ww = np.linalg.slogdet(w_mat.T @ w_mat)[1]
        if np.isinf(delta):
            ld_a = ld_ww  # OLS limit: the log(delta) terms cancel
        ll_ml = -0.5 * (n * np.log(2 * np.pi * rss / n) + logdet + n)
        ll_reml = -0.5 * (
            (n - q) * np.log(2 * np.pi * rss / (n - q)) + logdet + ld_a - ld_ww + (n - q)
        )
        se = np.sqrt(rss / (n - q) * ai[-1, -1])
        t = beta[-1] / se
        lp = np.log(2) + stats.t.logsf(abs(t), n - q)
        return {
            "beta": beta[-1],
            "se": se,
            "t": t,
            "neglog10p": -lp / np.log(10),
            "loglik_ml": ll_ml,
            "loglik_reml": ll_reml,
        }

    lines = []
    xs = {
        "nocov": np.ones((n, 1)),
        "cov": np.column_stack(
            [np.ones(n), samples["purity"].to_numpy(float), samples["group_B"].to_numpy(float)]
        ),
    }
    for tag, x in xs.items():
        for mode in ["nulldelta", "delta1", "reml", "ml"]:
            ref = pd.read_csv(HERE / f"dense_r_{mode}_{tag}.tsv", sep="\t")
            diffs = {
                c: 0.0 for c in ["delta_rel", "beta", "se", "t", "neglog10p", "ll_ml", "ll_reml"]
            }
            gain = 0.0  # how much numpy's re-optimisation improved R's optimum (>= 0 if R short)
            for j, gene in enumerate(expr.columns):
                row = ref.iloc[j]
                assert row["gene"] == gene
                w_mat = np.column_stack([x, expr[gene].to_numpy(float)])
                delta = float(row["delta"])
                if mode in ("reml", "ml") and int(row["at_bound"]) == 0:
                    key = "loglik_reml" if mode == "reml" else "loglik_ml"
                    ld0 = np.log(delta)
                    res = optimize.minimize_scalar(
                        lambda v, w_mat=w_mat, key=key: -fit(float(np.exp(v)), w_mat)[key],
                        bounds=(ld0 - 0.1, ld0 + 0.1),
                        method="bounded",
                        options={"xatol": 1e-12},
                    )
                    d_np = float(np.exp(res.x))
                    gain = max(gain, -float(res.fun) - float(row[key]))
                    diffs["delta_rel"] = max(diffs["delta_rel"], abs(d_np - delta) / delta)
                    delta = d_np
                f = fit(delta, w_mat)
                for c in ["beta", "se", "t", "neglog10p"]:
                    diffs[c] = max(diffs[c], abs(f[c] - row[c]))
                diffs["ll_ml"] = max(diffs["ll_ml"], abs(f["loglik_ml"] - row["loglik_ml"]))
                diffs["ll_reml"] = max(diffs["ll_reml"], abs(f["loglik_reml"] - row["loglik_reml"]))
            lines.append(
                f"dense_r_{mode}_{tag}: max |numpy - R| "
                + ", ".join(f"{c}={v:.2e}" for c, v in diffs.items())
                + (
                    f" (interior rows re-optimised; max objective gain over R = {gain:.2e})"
                    if mode in ("reml", "ml")
                    else ""
                )
            )
    (HERE / "crosscheck_numpy.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
