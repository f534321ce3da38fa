"""Seeded synthetic data: a toy cohort for tests and docs, and a confounded tumour cohort.

Everything here is pure and deterministic: the same ``seed`` gives the same arrays on every
machine (one :func:`numpy.random.default_rng` stream per call, drawn in a fixed order).

Two generators:

- :func:`toy` -- small (60 samples x 200 genes by default) expression matrix plus a sample
  sheet (trait, purity, age, batch), for unit tests, docstrings and the demo.
- :func:`confounded_cohort` -- a tumour cohort in which tumour purity drives both the trait
  and a quarter of the genes, so that a naive per-gene regression finds thousands of
  "associations" that are nothing but purity. It is the ground truth behind
  ``docs/confounding.md`` and ``benchmarks/confounding.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CohortSettings",
    "DesignCounts",
    "SimulatedCohort",
    "confounded_cohort",
    "mouse_design_counts",
    "toy",
]


@dataclass(frozen=True)
class CohortSettings:
    """Every parameter of :func:`confounded_cohort` (the run is reproducible from these).

    See :func:`confounded_cohort` for the meaning of each field.
    """

    seed: int
    n_samples: int
    n_genes: int
    n_factors: int
    purity_gene_fraction: float
    n_causal: int
    purity_trait_r2: float
    trait_noise_r2: float
    purity_loading: float
    factor_variance: float
    causal_effect: float
    noise_sd_range: tuple[float, float]
    purity_beta: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain (JSON-serialisable) dict."""
        return asdict(self)


@dataclass(frozen=True)
class SimulatedCohort:
    """A simulated cohort with its ground truth.

    Attributes
    ----------
    expression : pandas.DataFrame
        Samples x genes log-expression (index ``sample``, columns ``gene``).
    trait : pandas.Series
        The phenotype (e.g. an aneuploidy score), indexed by sample.
    purity : pandas.Series
        Tumour purity in (0, 1), indexed by sample -- the confounder.
    is_causal : numpy.ndarray
        Boolean, one per gene (column order of ``expression``): the trait acts on the gene
        directly (``theta_g != 0``). The only true associations.
    is_purity_gene : numpy.ndarray
        Boolean, one per gene: the gene loads on purity (``a_g != 0``). Purity genes that
        are not causal are *confounded*: associated with the trait only through purity.
    factors : pandas.DataFrame
        The other latent factors ``F`` (samples x ``n_factors - 1``), which do not act on the
        trait.
    settings : CohortSettings
        Everything needed to regenerate the cohort.
    """

    expression: pd.DataFrame
    trait: pd.Series
    purity: pd.Series
    is_causal: np.ndarray
    is_purity_gene: np.ndarray
    factors: pd.DataFrame
    settings: CohortSettings

    @property
    def is_confounded(self) -> np.ndarray:
        """Boolean per gene: purity gene and not causal (associated with the trait only via purity)."""
        return self.is_purity_gene & ~self.is_causal


def _names(prefix: str, n: int) -> list[str]:
    width = len(str(max(n - 1, 0)))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def confounded_cohort(
    seed: int,
    *,
    n_samples: int = 300,
    n_genes: int = 2000,
    n_factors: int = 10,
    purity_gene_fraction: float = 0.25,
    n_causal: int = 20,
    purity_trait_r2: float = 0.5,
    trait_noise_r2: float = 0.3,
    purity_loading: float = 2.0,
    factor_variance: float = 1.0,
    causal_effect: float = 0.5,
    noise_sd_range: tuple[float, float] = (0.3, 0.9),
    purity_beta: tuple[float, float] = (5.0, 2.0),
) -> SimulatedCohort:
    r"""Simulate a tumour cohort confounded by purity.

    Generative model, for sample :math:`n = 1..N` and gene :math:`g = 1..G`:

    .. math::

        p_n &\sim \mathrm{Beta}(\alpha, \beta)
            \quad\text{(purity; } \pi_n = (p_n - \bar p)/\mathrm{sd}(p)\text{, standardised)} \\
        F_{nj} &\sim N(0, 1), \quad j = 1..J = \text{n\_factors} - 1
            \quad\text{(other latent factors: immune, stroma, batch, ...)} \\
        t_n &= \sqrt{\rho}\,\pi_n + \sqrt{1 - \rho - m}\,\eta_n
            \quad\text{(the tumour's true state, e.g. its aneuploidy)} \\
        y_n &= t_n + \sqrt{m}\,\nu_n
            \quad\text{(the measured trait; } \eta_n, \nu_n \sim N(0, 1)\text{)} \\
        x_{ng} &= \mu_g + a_g \pi_n + \sum_j \Lambda_{jg} F_{nj} + \theta_g t_n
            + \sigma_g \varepsilon_{ng}, \quad \varepsilon_{ng} \sim N(0, 1)

    where :math:`\rho` = ``purity_trait_r2`` is the share of the trait's variance due to
    purity and :math:`m` = ``trait_noise_r2`` the share that is measurement noise
    (:math:`\mathrm{var}(y) = 1`), and

    - :math:`\mu_g \sim N(8, 2^2)` (log-expression level);
    - purity loadings :math:`a_g = s_g u_g \ell`, :math:`s_g = \pm 1`,
      :math:`u_g \sim U(0.5, 1.5)`, :math:`\ell` = ``purity_loading``, on a random
      ``purity_gene_fraction`` of the genes (the *purity genes*), :math:`a_g = 0` elsewhere;
    - factor loadings :math:`\Lambda_{jg} \sim N(0, v_F / J)` on every gene
      (:math:`v_F` = ``factor_variance``): dense, trait-independent correlation between genes;
    - trait effects :math:`\theta_g = \pm` ``causal_effect`` on ``n_causal`` genes drawn at
      random among all genes (the *causal genes*; some are also purity genes),
      :math:`\theta_g = 0` elsewhere. The tumour's state acts on these genes (as aneuploidy
      changes the expression of dosage-sensitive genes); it is the only direct link between
      trait and expression;
    - noise SD :math:`\sigma_g \sim U(\text{noise\_sd\_range})`.

    A purity gene that is not causal (a *confounded* gene) is associated with the trait only
    through :math:`\pi` (marginal correlation :math:`\approx a_g\sqrt{\rho}/\mathrm{sd}(x_g)`);
    a causal gene is also associated with the purity-independent part :math:`\eta`. Purity
    is *not* given to the methods: it is the hidden confounder that a kinship matrix built
    from expression should capture.

    Why the measurement noise :math:`\nu`: causal genes carry :math:`t` into any kinship
    matrix built from all genes. Without :math:`\nu` the trait lies almost entirely in the
    span of that matrix, REML puts :math:`h^2` at its boundary (1) and the LMM tests become
    conservative. Measured traits (copy-number scores, clinical variables) are noisy, and a
    noise share :math:`m > 0` keeps the simulation in the regime seen on real cohorts.

    Parameters
    ----------
    seed
        Seed of the :func:`numpy.random.default_rng` stream.
    n_samples, n_genes
        :math:`N` and :math:`G`.
    n_factors
        Number of latent factors, purity included (so :math:`J` = ``n_factors - 1`` others).
    purity_gene_fraction
        Fraction of genes that load on purity, in [0, 1].
    n_causal
        Number of genes on which the trait acts.
    purity_trait_r2
        :math:`\rho`, fraction of the trait's variance due to purity.
    trait_noise_r2
        :math:`m`, fraction of the trait's variance that is measurement noise (not seen by any
        gene); :math:`\rho + m \le 1`.
    purity_loading
        :math:`\ell`, typical absolute purity loading (in units of the expression scale).
    factor_variance
        :math:`v_F`, expected variance each gene gets from the other factors.
    causal_effect
        :math:`|\theta_g|` for causal genes (the trait has variance 1).
    noise_sd_range
        Range of the per-gene noise SD :math:`\sigma_g`.
    purity_beta
        :math:`(\alpha, \beta)` of the purity distribution (mean 0.71 by default, as TCGA).

    Returns
    -------
    SimulatedCohort
        Expression (samples ``s000..`` x genes ``g0000..``), trait, purity, ground-truth
        masks, the other factors, and the settings.

    Raises
    ------
    ValueError
        If a size or fraction is out of range.
    """
    if n_samples < 3 or n_genes < 1:
        raise ValueError(f"need n_samples >= 3 and n_genes >= 1, got {n_samples}, {n_genes}")
    if n_factors < 1:
        raise ValueError(f"n_factors counts purity, so it must be >= 1, got {n_factors}")
    if not 0.0 <= purity_gene_fraction <= 1.0:
        raise ValueError(f"purity_gene_fraction must be in [0, 1], got {purity_gene_fraction}")
    if not 0 <= n_causal <= n_genes:
        raise ValueError(f"n_causal must be in [0, n_genes={n_genes}], got {n_causal}")
    if not (
        0.0 <= purity_trait_r2 and 0.0 <= trait_noise_r2 and purity_trait_r2 + trait_noise_r2 <= 1.0
    ):
        raise ValueError(
            "purity_trait_r2 and trait_noise_r2 must be >= 0 with a sum <= 1, "
            f"got {purity_trait_r2} and {trait_noise_r2}"
        )
    lo, hi = noise_sd_range
    if not 0.0 < lo <= hi:
        raise ValueError(f"noise_sd_range must satisfy 0 < low <= high, got {noise_sd_range}")

    settings = CohortSettings(
        seed=seed,
        n_samples=n_samples,
        n_genes=n_genes,
        n_factors=n_factors,
        purity_gene_fraction=purity_gene_fraction,
        n_causal=n_causal,
        purity_trait_r2=purity_trait_r2,
        trait_noise_r2=trait_noise_r2,
        purity_loading=purity_loading,
        factor_variance=factor_variance,
        causal_effect=causal_effect,
        noise_sd_range=(float(lo), float(hi)),
        purity_beta=(float(purity_beta[0]), float(purity_beta[1])),
    )
    rng = np.random.default_rng(seed)
    n, g, j = n_samples, n_genes, n_factors - 1

    # Samples: purity, other factors, trait.
    purity = rng.beta(purity_beta[0], purity_beta[1], size=n)
    pi = (purity - purity.mean()) / purity.std()
    factors = rng.standard_normal((n, j))
    eta = rng.standard_normal(n)
    nu = rng.standard_normal(n)
    state = np.sqrt(purity_trait_r2) * pi + np.sqrt(1.0 - purity_trait_r2 - trait_noise_r2) * eta
    trait = state + np.sqrt(trait_noise_r2) * nu

    # Genes: level, purity loadings, factor loadings, trait effects, noise SD.
    mu = rng.normal(8.0, 2.0, size=g)
    n_purity = round(purity_gene_fraction * g)
    is_purity = np.zeros(g, dtype=bool)
    is_purity[rng.choice(g, size=n_purity, replace=False)] = True
    a = np.where(
        is_purity,
        rng.choice([-1.0, 1.0], size=g) * rng.uniform(0.5, 1.5, size=g) * purity_loading,
        0.0,
    )
    loadings = rng.normal(0.0, np.sqrt(factor_variance / j), size=(j, g)) if j else np.zeros((0, g))
    is_causal = np.zeros(g, dtype=bool)
    is_causal[rng.choice(g, size=n_causal, replace=False)] = True
    theta = np.where(is_causal, rng.choice([-1.0, 1.0], size=g) * causal_effect, 0.0)
    sigma = rng.uniform(lo, hi, size=g)

    x = (
        mu[None, :]
        + np.outer(pi, a)
        + factors @ loadings
        + np.outer(state, theta)
        + rng.standard_normal((n, g)) * sigma[None, :]
    )

    samples = pd.Index(_names("s", n), name="sample")
    genes = pd.Index(_names("g", g), name="gene")
    return SimulatedCohort(
        expression=pd.DataFrame(x, index=samples, columns=genes),
        trait=pd.Series(trait, index=samples, name="trait"),
        purity=pd.Series(purity, index=samples, name="purity"),
        is_causal=_readonly(is_causal),
        is_purity_gene=_readonly(is_purity),
        factors=pd.DataFrame(
            factors, index=samples, columns=pd.Index(_names("factor", j), name="factor")
        ),
        settings=settings,
    )


def toy(
    seed: int = 0, n_samples: int = 60, n_genes: int = 200
) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""A small seeded cohort for tests, docs and demos.

    The expression is :func:`confounded_cohort` (3 latent factors including purity, a quarter
    of the genes purity genes, :math:`\max(1, G/40)` causal genes with
    ``causal_effect=1.0`` so they are visible at :math:`N = 60`) plus a two-level batch
    that shifts a tenth of the genes by :math:`+0.5` in batch ``"B"``:

    .. math:: x_{ng} \leftarrow x_{ng} + 0.5\,[\text{batch}_n = B]\,b_g,
        \quad b_g \sim \mathrm{Bernoulli}(0.1)

    The sample sheet also has an ``age`` column unrelated to everything (a null covariate).

    Parameters
    ----------
    seed
        Seed (the same seed gives identical frames).
    n_samples, n_genes
        Size of the expression matrix.

    Returns
    -------
    expression : pandas.DataFrame
        Samples x genes (index ``sample`` = ``s00..``, columns ``gene`` = ``g000..``).
    samples : pandas.DataFrame
        Indexed like ``expression``, columns ``trait`` (float), ``purity`` (float in (0, 1)),
        ``age`` (float, years), ``batch`` (categorical ``"A"``/``"B"``).

    Examples
    --------
    >>> expression, samples = toy(seed=0)
    >>> expression.shape, list(samples.columns)
    ((60, 200), ['trait', 'purity', 'age', 'batch'])
    """
    cohort = confounded_cohort(
        seed,
        n_samples=n_samples,
        n_genes=n_genes,
        n_factors=3,
        n_causal=max(1, n_genes // 40),
        causal_effect=1.0,
    )
    # A separate stream so toy's extras never change the cohort it is built on.
    rng = np.random.default_rng([seed, 1])
    batch = rng.choice(np.array(["A", "B"]), size=n_samples)
    batch_genes = rng.random(n_genes) < 0.1
    shift = 0.5 * np.outer(batch == "B", batch_genes)
    age = np.round(rng.normal(60.0, 10.0, size=n_samples), 1)

    expression = cohort.expression + shift
    samples = pd.DataFrame(
        {
            "trait": cohort.trait,
            "purity": cohort.purity,
            "age": age,
            "batch": pd.Categorical(batch, categories=["A", "B"]),
        },
        index=expression.index,
    )
    return expression, samples


@dataclass(frozen=True)
class DesignCounts:
    """Negative-binomial counts simulated on a designed experiment.

    Attributes
    ----------
    counts
        Samples × genes float64 counts.
    beta_weight, beta_urea
        Per-gene true log-fold effects of one SD of weight / urea (0 for null genes).
    """

    counts: np.ndarray
    beta_weight: np.ndarray
    beta_urea: np.ndarray


def mouse_design_counts(
    seed: int, design: pd.DataFrame, *, n_genes: int = 2000, n_true: int = 120
) -> DesignCounts:
    r"""Seeded NB counts on the mouse design (columns ``weight``, ``urea``, ``group``).

    .. math:: \log\mu_{gi} = \log b_g + \log L_i + \beta^w_g z(w_i) + \beta^u_g z(u_i)
              + u_{g,\mathrm{group}(i)},\qquad c_{gi} \sim \mathrm{NB}(\mu_{gi}, \phi_g)

    with ``b_g`` log-normal (median 200 counts per million), library sizes
    ``L_i ~ U(0.6, 1.6)·2e7``, ``z`` the standardised covariate (SD with n − 1), a group
    random intercept per gene ``u ~ N(0, 0.3²)``, dispersions ``φ_g ~ U(0.05, 0.3)``; genes
    ``0…n_true−1`` follow weight and ``n_true…2·n_true−1`` urea with ``|β| = 0.5``, signs
    random. Used by the calibration study and the benchmarks of ``exprlmm design``.
    """
    rng = np.random.default_rng(seed)
    g, n = n_genes, len(design)
    zw = ((design.weight - design.weight.mean()) / design.weight.std()).to_numpy()
    zu = ((design.urea - design.urea.mean()) / design.urea.std()).to_numpy()
    groups = pd.factorize(design.group)[0]
    base = np.exp(rng.normal(np.log(200.0), 1.5, g)) / 1e6
    lib = rng.uniform(0.6, 1.6, n) * 2e7
    bw, bu = np.zeros(g), np.zeros(g)
    bw[:n_true] = 0.5 * rng.choice([-1, 1], n_true)
    bu[n_true : 2 * n_true] = 0.5 * rng.choice([-1, 1], n_true)
    u = rng.normal(0, 0.3, (g, int(groups.max()) + 1))
    log_mu = np.log(base)[:, None] + np.log(lib)[None, :] + np.outer(bw, zw) + np.outer(bu, zu)
    mu = np.exp(log_mu + u[:, groups])
    phi = rng.uniform(0.05, 0.3, g)[:, None]
    counts = rng.negative_binomial(1.0 / phi, 1.0 / (1.0 + mu * phi))
    return DesignCounts(counts.T.astype(float), _readonly(bw), _readonly(bu))
