"""Kinship (sample-similarity) matrices from expression and their eigensystems."""

from exprlmm.kinship.kinship import (
    Eigensystem,
    eigensystem,
    eigensystem_from_expression,
    kinship_from_expression,
    standardize,
)

__all__ = [
    "Eigensystem",
    "eigensystem",
    "eigensystem_from_expression",
    "kinship_from_expression",
    "standardize",
]
