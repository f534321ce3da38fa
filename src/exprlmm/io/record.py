"""Run records: a JSON file next to each result with inputs, settings and versions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from exprlmm.io.atomic import write_text_atomic

_PACKAGES = (
    "exprlmm",
    "numpy",
    "scipy",
    "pandas",
    "threadpoolctl",
    "array-api-compat",
    "statsmodels",
)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_input(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path", "sha256", "bytes"}`` of an input file."""
    p = Path(path)
    return {"path": str(p), "sha256": file_sha256(p), "bytes": p.stat().st_size}


def environment() -> dict[str, Any]:
    """Python, platform and package versions for the record."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for info in threadpool_info()
        ]
    except Exception:  # threadpoolctl introspection is best-effort only
        blas = []
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "blas": blas,
    }


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_run_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` (plus a UTC timestamp and the environment) as JSON, atomically."""
    full = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **record,
        "environment": environment(),
    }
    write_text_atomic(path, json.dumps(full, indent=2, default=_default, allow_nan=True) + "\n")


def run_record_path(output: str | os.PathLike[str]) -> Path:
    """Where the run record of ``output`` goes: ``<output>.run.json``."""
    return Path(f"{output}.run.json")
