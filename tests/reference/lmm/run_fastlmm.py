"""FaST-LMM reference scans over all 300 genes of the synthetic cohort.

Run from the repository root in a separate virtualenv that has fastlmm::

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install fastlmm six numpy pandas statsmodels
    OPENBLAS_NUM_THREADS=1 /tmp/refenv/bin/python tests/reference/lmm/run_fastlmm.py

Reads expression.tsv, samples.tsv and kinship.tsv next to this script and writes

- fastlmm_nocov.tsv, fastlmm_cov.tsv            null-model REML h2 (FaST-LMM default)
- fastlmm_nocov_delta1.tsv, fastlmm_cov_delta1.tsv   h2 fixed at 0.5 (delta = 1)
- fastlmm_null.tsv                              the null fits (h2, delta, REML nLL)
- fastlmm_checks.txt                            self-checks described in README.md

Each gene is passed as a continuous "SNP" (per-gene standardised expression, ddof=0);
single_snp re-standardises test SNPs itself (Unit standardizer), which is a no-op here.
K is passed as KernelData; single_snp applies DiagKtoN (K * N / trace K), a no-op up to
rounding because trace K = N exactly for K = Z Z^T / G with ddof=0 standardisation.
"""

from __future__ import annotations

import logging
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from fastlmm.association import single_snp
from fastlmm.inference.lmm_cov import LMM as LmmCov
from pysnptools.kernelreader import KernelData
from pysnptools.snpreader import SnpData
from scipy import stats

HERE = Path(__file__).resolve().parent
COVARIATES = ["purity", "group_B"]


def load() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    expr = pd.read_csv(HERE / "expression.tsv", sep="\t", index_col=0, dtype={"sample": str})
    samples = pd.read_csv(HERE / "samples.tsv", sep="\t", index_col=0)
    kin = pd.read_csv(HERE / "kinship.tsv", sep="\t", index_col=0)
    assert list(expr.index) == list(samples.index) == list(kin.index) == list(kin.columns)
    return expr, samples, kin.to_numpy(dtype=float)


def standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0, ddof=0)


def reml_nll(y: np.ndarray, covar: np.ndarray, k: np.ndarray, delta: float) -> float:
    """-l_R(delta) of DESIGN.md (dense, for the self-check only)."""
    n = y.shape[0]
    x = np.c_[np.ones(n), covar] if covar.size else np.ones((n, 1))
    q = x.shape[1]
    h = k + delta * np.eye(n)
    hi_x = np.linalg.solve(h, x)
    xhx = x.T @ hi_x
    beta = np.linalg.solve(xhx, hi_x.T @ y)
    r = y - x @ beta
    s2 = r @ np.linalg.solve(h, r) / (n - q)
    return 0.5 * (
        (n - q) * np.log(2 * np.pi * s2)
        + np.linalg.slogdet(h)[1]
        + np.linalg.slogdet(xhx)[1]
        - np.linalg.slogdet(x.T @ x)[1]
        + (n - q)
    )


def run(expr, samples, k, *, covariates: bool, h2: float | None, raw: bool = False):
    iid = np.array([[str(s), str(s)] for s in expr.index], dtype=str)
    genes = np.array([str(g) for g in expr.columns], dtype=str)
    x = expr.to_numpy(dtype=float)
    val = x if raw else standardise(x)
    pos = np.array([[1, i + 1, i + 1] for i in range(len(genes))], dtype=float)
    test_snps = SnpData(iid=iid, sid=genes, val=val, pos=pos)
    pheno = SnpData(iid=iid, sid=np.array(["y"]), val=samples[["y"]].to_numpy(dtype=float))
    covar = (
        SnpData(
            iid=iid,
            sid=np.array(COVARIATES),
            val=samples[COVARIATES].to_numpy(dtype=float),
        )
        if covariates
        else None
    )
    k0 = KernelData(iid=iid, val=k.copy())  # lmm_cov modifies K in place: pass a copy
    frame = single_snp(
        test_snps,
        pheno,
        K0=k0,
        covar=covar,
        leave_out_one_chrom=False,
        h2=h2,
        count_A1=False,
    )
    frame = frame.sort_values("sid_index").reset_index(drop=True)
    assert list(frame["SNP"]) == list(genes)
    return frame


def tidy(frame: pd.DataFrame, expr: pd.DataFrame, *, n_fixed: int) -> pd.DataFrame:
    n = expr.shape[0]
    df = n - (n_fixed + 1)
    sd = expr.to_numpy(dtype=float).std(axis=0, ddof=0)
    t = frame["SnpWeight"].to_numpy() / frame["SnpWeightSE"].to_numpy()
    h2 = frame["Nullh2"].to_numpy()
    out = pd.DataFrame(
        {
            "gene": frame["SNP"],
            "PValue": frame["PValue"],
            "neglog10p": -np.log10(frame["PValue"].to_numpy()),
            "SnpWeight": frame["SnpWeight"],
            "SnpWeightSE": frame["SnpWeightSE"],
            "t": t,
            "df": df,
            "pvalue_t": 2 * stats.t.sf(np.abs(t), df),
            "beta_raw": frame["SnpWeight"].to_numpy() / sd,
            "se_raw": frame["SnpWeightSE"].to_numpy() / sd,
            "EffectSize": frame["EffectSize"],
            "Nullh2": h2,
            "delta": (1 - h2) / h2,
        }
    )
    return out


def write(df: pd.DataFrame, name: str) -> None:
    df.to_csv(HERE / name, sep="\t", index=False, float_format="%.17g")


def null_fit(samples, k, *, covariates: bool, h2_used: float) -> dict[str, float]:
    """FaST-LMM's own null model, to expose its REML nLL.

    ``findH2`` (grid of 10 h2 values + Brent, the search single_snp runs) is repeated
    here; its optimum can differ from the h2 single_snp used in the ~8th digit (Brent
    tolerance on a flat surface, K differing by rounding), so the likelihood is also
    evaluated at ``h2_used``, the Nullh2 single_snp reported.
    """
    n = samples.shape[0]
    covar = samples[COVARIATES].to_numpy(dtype=float) if covariates else np.zeros((n, 0))
    x = np.c_[covar, np.ones((n, 1))]
    kk = k * (n / np.trace(k))  # DiagKtoN, as single_snp applies
    lmm = LmmCov(X=x, Y=samples[["y"]].to_numpy(dtype=float), K=kk.copy(), inplace=True)
    res = lmm.findH2()
    h2_refound = float(np.asarray(res["h2"]).ravel()[0])
    nll_used = float(np.asarray(lmm.nLLeval(h2=h2_used)["nLL"]).ravel()[0])
    delta = (1 - h2_used) / h2_used
    return {
        "covariates": "purity+group_B" if covariates else "none",
        "q_null": x.shape[1],
        "Nullh2": h2_used,
        "delta": delta,
        "log_delta": float(np.log(delta)),
        "nLL_reml_fastlmm": nll_used,
        "loglik_reml_dense_at_delta": -reml_nll(
            samples["y"].to_numpy(dtype=float), covar, k, delta
        ),
        "Nullh2_findH2_rerun": h2_refound,
        "nLL_reml_fastlmm_rerun": float(np.asarray(res["nLL"]).ravel()[0]),
    }


def main() -> None:
    logging.getLogger().setLevel(logging.WARNING)
    expr, samples, k = load()
    checks: list[str] = []
    nulls = []
    for cov, tag in [(False, "nocov"), (True, "cov")]:
        n_fixed = 1 + (len(COVARIATES) if cov else 0)
        frame = run(expr, samples, k, covariates=cov, h2=None)
        out = tidy(frame, expr, n_fixed=n_fixed)
        write(out, f"fastlmm_{tag}.tsv")
        frame1 = run(expr, samples, k, covariates=cov, h2=0.5)
        write(tidy(frame1, expr, n_fixed=n_fixed), f"fastlmm_{tag}_delta1.tsv")
        # raw (unstandardised) expression as test SNPs must give the same answer
        raw = run(expr, samples, k, covariates=cov, h2=None, raw=True)
        checks.append(
            f"{tag}: max |PValue(raw) - PValue(std)| = "
            f"{np.max(np.abs(raw['PValue'] - frame['PValue'])):.3e}; "
            f"max |SnpWeight(raw) - SnpWeight(std)| = "
            f"{np.max(np.abs(raw['SnpWeight'] - frame['SnpWeight'])):.3e}"
        )
        checks.append(
            f"{tag}: max |PValue - 2*t.sf(|W/SE|, N-q)| = "
            f"{np.max(np.abs(out['PValue'] - out['pvalue_t'])):.3e}"
        )
        nf = null_fit(samples, k, covariates=cov, h2_used=float(out["Nullh2"].iloc[0]))
        checks.append(
            f"{tag}: Nullh2 = {nf['Nullh2']!r} (delta = {nf['delta']!r}); "
            f"FaST-LMM REML nLL there = {nf['nLL_reml_fastlmm']:.12f}; "
            f"dense -l_R(delta) (DESIGN.md formula) = {-nf['loglik_reml_dense_at_delta']:.12f}; "
            f"findH2 rerun h2 = {nf['Nullh2_findH2_rerun']!r}"
        )
        nulls.append(nf)
    write(pd.DataFrame(nulls), "fastlmm_null.tsv")
    vers = ", ".join(
        f"{p} {version(p)}" for p in ["fastlmm", "pysnptools", "numpy", "scipy", "pandas"]
    )
    checks.append(f"python {platform.python_version()}; {vers}")
    (HERE / "fastlmm_checks.txt").write_text("\n".join(checks) + "\n")
    print("\n".join(checks))


if __name__ == "__main__":
    main()
