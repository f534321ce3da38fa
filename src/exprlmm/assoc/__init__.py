"""Association scans: simple linear regression and the linear mixed model."""

from exprlmm.assoc.lmm import NullModel, fit_null_model, lmm_scan, lmm_scan_traits
from exprlmm.assoc.slr import slr_scan

__all__ = ["NullModel", "fit_null_model", "lmm_scan", "lmm_scan_traits", "slr_scan"]
