"""exprlmm: expression–phenotype association scans with linear mixed models.

The public API is re-exported here; see the README for a tour.
"""

from exprlmm.errors import UserInputError

__version__ = "0.1.0"

__all__ = ["UserInputError", "__version__"]
