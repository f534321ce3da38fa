"""Array-API helpers: one namespace for numpy (default), torch, cupy or array-api-strict.

The computing modules call :func:`namespace` on their inputs and use only functions of
the array API standard, so the same code runs on any conforming backend; p-values and
other scalar work happen on the host (numpy/scipy) via :func:`to_numpy`.
"""

from __future__ import annotations

import contextlib

import numpy as np
from array_api_compat import array_namespace, device, is_numpy_namespace

__all__ = ["device", "errstate", "is_numpy_namespace", "namespace", "to_numpy"]


def namespace(*arrays):
    """The array-API namespace of ``arrays`` (numpy for lists, pandas objects and scalars)."""
    real = [a for a in arrays if a is not None and _is_backend_array(a)]
    return array_namespace(*real) if real else array_namespace(np.empty(0))


def _is_backend_array(a) -> bool:
    return type(a).__module__.split(".")[0] in {
        "numpy",
        "torch",
        "cupy",
        "array_api_strict",
        "dask",
    }


def to_numpy(x) -> np.ndarray:
    """Copy an array of any backend to a numpy array on the host."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        return x.detach().cpu().numpy()
    if module == "cupy":
        return x.get()
    if module == "array_api_strict":
        return np.asarray(x._array)
    return np.asarray(x)


def errstate(xp):
    """``numpy.errstate`` silencing divide/invalid warnings for numpy; a no-op elsewhere."""
    if is_numpy_namespace(xp):
        return np.errstate(divide="ignore", invalid="ignore")
    return contextlib.nullcontext()
