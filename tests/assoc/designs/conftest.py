"""Shared fixtures of the design tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

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
