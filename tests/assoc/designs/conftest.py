"""Shared fixtures of the design tests."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from exprlmm.assoc.designs.counts import calc_norm_factors, filter_by_expr
from exprlmm.assoc.designs.formula import build_design

REF = Path(__file__).resolve().parents[2] / "reference" / "designs"


def _calibration_module():
    spec = importlib.util.spec_from_file_location("design_calibration", REF / "calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def calibration_replicate():
    """Replicate seed 1000 of tests/reference/designs/calibration.py, filtered and TMM-scaled.

    Attributes: ``cal`` (the module: ``evaluate``), ``mouse`` (sheet indexed by animal),
    ``counts`` (kept genes), ``lib_size``, ``truth`` (``{"weight": mask, "urea": mask}`` over
    the kept genes).
    """
    cal = _calibration_module()
    mouse = pd.read_csv(REF / "mouse.tsv", sep="\t")
    counts, true_weight, true_urea = cal.simulate(1000, mouse)
    mouse = mouse.set_index("animal")
    keep = filter_by_expr(counts, build_design("~ weight + urea", mouse).x)
    kept = counts[:, keep]
    return SimpleNamespace(
        cal=cal,
        mouse=mouse,
        counts=kept,
        lib_size=kept.sum(axis=1) * calc_norm_factors(kept),
        truth={"weight": true_weight[keep], "urea": true_urea[keep]},
    )


@pytest.fixture(scope="session")
def nb_sim():
    """The simulated mouse counts the edgeR references use (``sim_counts.tsv.gz``): genes kept
    by filterByExpr on ``~ weight + urea + C(group)``, TMM library sizes and log offsets.

    Keys: ``mouse``, ``counts`` (samples × kept genes), ``c`` (its float matrix), ``x`` (the
    design), ``lib``, ``off``, ``genes``. Shared: copy before changing.
    """
    mouse = pd.read_csv(REF / "mouse.tsv", sep="\t")
    counts = pd.read_csv(REF / "sim_counts.tsv.gz", sep="\t", index_col=0).T
    design = build_design("~ weight + urea + C(group)", mouse)
    c = counts.to_numpy(dtype=float)
    keep = filter_by_expr(c, design.x)
    c = c[:, keep]
    lib = c.sum(axis=1) * calc_norm_factors(c)
    return {
        "mouse": mouse,
        "counts": counts.loc[:, keep],
        "c": c,
        "x": design.x,
        "lib": lib,
        "off": np.log(lib),
        "genes": counts.columns[keep],
    }


@pytest.fixture
def design_files(tmp_path) -> Callable[[int], dict]:
    """``design_files(n)``: the mouse sheet and the first ``n`` genes of the simulated counts
    written to ``tmp_path`` for the CLI; returns ``dir``, ``sheet``, ``counts`` (paths) and
    ``raw`` (the counts table)."""

    def write(n_genes: int) -> dict:
        mouse = pd.read_csv(REF / "mouse.tsv", sep="\t")
        sheet = tmp_path / "mice.tsv"
        mouse.drop(columns="Gene.X").to_csv(sheet, sep="\t", index=False)
        counts = pd.read_csv(REF / "sim_counts.tsv.gz", sep="\t", index_col=0).iloc[:n_genes]
        counts_path = tmp_path / "counts.tsv"
        counts.to_csv(counts_path, sep="\t")
        return {"dir": tmp_path, "sheet": sheet, "counts": counts_path, "raw": counts}

    return write
