"""Array-API helpers: one namespace for numpy (default), torch, cupy or array-api-strict.

The computing modules call :func:`namespace` on their inputs and use only functions of
the array API standard, so the same code runs on any conforming backend; p-values and
other scalar work happen on the host (numpy/scipy) via :func:`to_numpy`.
"""

from __future__ import annotations

import contextlib

import numpy as np
from array_api_compat import array_namespace, device, is_numpy_namespace

__all__ = [
    "BACKENDS",
    "device",
    "errstate",
    "is_numpy_namespace",
    "namespace",
    "to_backend",
    "to_numpy",
]


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


BACKENDS = ("numpy", "torch", "cupy")


def to_backend(array, backend: str = "numpy", *, device_name: str | None = None):
    """Move a host array to ``backend`` (float64): ``numpy`` (as is), ``torch`` or ``cupy``.

    ``device_name`` is a torch device (default ``"cuda"``). A missing library or GPU is an
    error that names the extra to install; there is no silent fall-back to the CPU.

    Raises
    ------
    exprlmm.errors.UserInputError
        If the backend's library is not installed or no GPU is visible to it.
    """
    from exprlmm.errors import UserInputError

    if backend == "numpy":
        return np.asarray(array, dtype=np.float64)
    if backend == "torch":
        try:
            import torch
        except ImportError:
            raise UserInputError(
                "--backend torch: PyTorch is not installed; install it with `pip install 'exprlmm[gpu]'` "
                "(or a torch build for your CUDA version)"
            ) from None
        target = device_name or "cuda"
        if target.startswith("cuda") and not torch.cuda.is_available():
            raise UserInputError(
                "--backend torch: no CUDA GPU is visible to PyTorch; use --device cpu or --backend numpy"
            )
        return torch.asarray(
            np.asarray(array, dtype=np.float64), dtype=torch.float64, device=target
        )
    if backend == "cupy":
        try:
            import cupy
        except ImportError:
            raise UserInputError(
                "--backend cupy: CuPy is not installed; install it with `pip install cupy-cuda12x` "
                "(matching your CUDA version)"
            ) from None
        try:
            return cupy.asarray(np.asarray(array, dtype=np.float64))
        except Exception as err:  # cupy raises its own CUDA runtime errors when no GPU is present
            raise UserInputError(f"--backend cupy: no usable GPU ({err})") from None
    raise UserInputError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
