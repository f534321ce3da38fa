"""A small study folder: a seeded toy cohort, a GMT of random sets, a config dict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exprlmm.datasets import toy


def write_toy_cohort(folder: Path, seed: int = 0, n_samples: int = 60, n_genes: int = 200):
    folder.mkdir(parents=True, exist_ok=True)
    expression, samples = toy(seed=seed, n_samples=n_samples, n_genes=n_genes)
    expression.to_csv(folder / "expression.tsv", sep="\t")
    samples.to_csv(folder / "samples.tsv", sep="\t")
    return expression, samples


def write_gmt(path: Path, genes: list[str], n_sets: int = 8, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = [f"SET_{i}" for i in range(n_sets)]
    lines = []
    for name in names:
        members = rng.choice(genes, size=int(rng.integers(15, 31)), replace=False)
        lines.append("\t".join([name, "toy set", *members]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return names


@pytest.fixture
def gmt_writer():
    """`write_gmt` for tests that build their own cohort."""
    return write_gmt


@pytest.fixture
def study_dict(tmp_path):
    """Config tables of a one-cohort study of the toy data (relative paths, base tmp_path)."""
    expression, _ = write_toy_cohort(tmp_path / "data")
    write_gmt(tmp_path / "data" / "sets.gmt", list(expression.columns))
    return {
        "output": "out",
        "trait": "trait",
        "seed": 5,
        "purity": {"alpha": 0.01, "top_n": 20},
        "gsea": {
            "gene_sets": ["data/sets.gmt"],
            "remove_genes": "none",
            "highlight": ["SET_0", "SET_1"],
            "permutations": 100,
            "seed": 11,
        },
        "subsample": {"sizes": [20, 30], "repeats": 2, "terms": ["SET_0"], "permutations": 50},
        "cohorts": [
            {
                "name": "TOY",
                "expression": "data/expression.tsv",
                "samples": "data/samples.tsv",
                "purity_column": "purity",
            }
        ],
    }
