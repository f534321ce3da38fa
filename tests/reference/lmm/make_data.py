"""Generate the seeded synthetic cohort used by the LMM and SLR reference files.

Run from the repository root with any Python that has numpy (>= 1.17, for
``default_rng``)::

    python tests/reference/lmm/make_data.py

Writes (into the folder of this script):

- ``expression.tsv``  samples x genes (80 x 300), first column ``sample``.
- ``samples.tsv``     ``sample, y, purity, group, group_B``.
- ``kinship.tsv``     K = Z Z^T / G (80 x 80), first column ``sample``.

Every value in ``expression.tsv`` and ``samples.tsv`` is rounded to a fixed number of
decimals and written with Python's shortest round-trip ``repr``: the parsed double is
exactly the double every reference script used.  ``kinship.tsv`` is written with
``%.17g`` (also an exact round trip).

Generative model (documented in README.md):

    F      ~ N(0, 1)^{N x 3}                        three latent factors
    purity ~ Beta(6, 3)                             numeric covariate
    group  = 40 x "A" + 40 x "B", shuffled          2-level categorical (dummy group_B)
    L[f,g] = N(0, 1) * Bernoulli(0.3)               sparse factor loadings
    expr[:, g] = mu_g + 0.8 F L[:, g] + b_g (purity - 0.667) + c_g group_B + sd_g eps
        mu_g ~ U(4, 12), sd_g ~ U(0.3, 1.0),
        b_g = N(0, 1.5^2) for 20% of genes else 0, c_g = N(0, 0.7^2) for 10% else 0
    y = 0.5 F[:, 0] + 1.5 (purity - 0.667) + 0.4 group_B + N(0, 1)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20240611
N_SAMPLES = 80
N_GENES = 300
N_FACTORS = 3
EXPR_DECIMALS = 6
OUT = Path(__file__).resolve().parent


def generate() -> tuple[list[str], list[str], np.ndarray, dict[str, np.ndarray]]:
    """Draw the cohort; return sample ids, gene ids, expression and sample columns."""
    rng = np.random.default_rng(SEED)
    n, g = N_SAMPLES, N_GENES
    factors = rng.standard_normal((n, N_FACTORS))
    purity = rng.beta(6.0, 3.0, size=n)
    group_b = rng.permutation(np.repeat([0.0, 1.0], n // 2))

    loadings = rng.standard_normal((N_FACTORS, g)) * (rng.random((N_FACTORS, g)) < 0.3)
    mu = rng.uniform(4.0, 12.0, size=g)
    sd = rng.uniform(0.3, 1.0, size=g)
    b_purity = rng.normal(0.0, 1.5, size=g) * (rng.random(g) < 0.2)
    c_group = rng.normal(0.0, 0.7, size=g) * (rng.random(g) < 0.1)
    noise = rng.standard_normal((n, g))

    pc = purity - 0.667
    expr = (
        mu[None, :]
        + 0.8 * factors @ loadings
        + pc[:, None] * b_purity[None, :]
        + group_b[:, None] * c_group[None, :]
        + noise * sd[None, :]
    )
    y = 0.5 * factors[:, 0] + 1.5 * pc + 0.4 * group_b + rng.standard_normal(n)

    expr = np.round(expr, EXPR_DECIMALS)
    y = np.round(y, EXPR_DECIMALS)
    purity = np.round(purity, 4)

    samples = [f"S{i + 1:02d}" for i in range(n)]
    genes = [f"G{j + 1:03d}" for j in range(g)]
    cols = {"y": y, "purity": purity, "group_B": group_b}
    return samples, genes, expr, cols


def kinship(expr: np.ndarray) -> np.ndarray:
    """K = Z Z^T / G with Z the per-gene standardised expression (ddof=0)."""
    z = (expr - expr.mean(axis=0)) / expr.std(axis=0, ddof=0)
    return z @ z.T / expr.shape[1]


def main() -> None:
    samples, genes, expr, cols = generate()
    assert np.all(expr.std(axis=0) > 0), "constant gene"

    with open(OUT / "expression.tsv", "w") as fh:
        fh.write("sample\t" + "\t".join(genes) + "\n")
        for s, row in zip(samples, expr, strict=True):
            fh.write(s + "\t" + "\t".join(repr(float(v)) for v in row) + "\n")

    with open(OUT / "samples.tsv", "w") as fh:
        fh.write("sample\ty\tpurity\tgroup\tgroup_B\n")
        for i, s in enumerate(samples):
            grp = "B" if cols["group_B"][i] == 1.0 else "A"
            fh.write(
                f"{s}\t{float(cols['y'][i])!r}\t{float(cols['purity'][i])!r}\t{grp}\t"
                f"{int(cols['group_B'][i])}\n"
            )

    # Recompute K from the values exactly as they will be parsed back from the file.
    parsed = np.loadtxt(OUT / "expression.tsv", delimiter="\t", skiprows=1, usecols=range(1, 301))
    assert np.array_equal(parsed, expr), "expression did not round-trip"
    k = kinship(parsed)
    with open(OUT / "kinship.tsv", "w") as fh:
        fh.write("sample\t" + "\t".join(samples) + "\n")
        for s, row in zip(samples, k, strict=True):
            fh.write(s + "\t" + "\t".join(f"{v:.17g}" for v in row) + "\n")


if __name__ == "__main__":
    main()
