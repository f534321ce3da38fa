"""Atomic writes: nothing half-written, and results get the usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from exprlmm.io.atomic import atomic_path, write_text_atomic


def test_result_has_default_permissions(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    target = tmp_path / "result.tsv"
    write_text_atomic(target, "a\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "result.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.tsv"]
