"""GMT reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from exprlmm.errors import UserInputError
from exprlmm.io.gmt import parse_gmt, read_gene_list, read_gmt, resolve_gene_sets


def test_parse_names_with_spaces_trailing_tabs_duplicates() -> None:
    sets = parse_gmt("My set one\tdesc\tA\tB\tA\t\nSECOND\t\tC\n")
    assert sets == {"My set one": ["A", "B"], "SECOND": ["C"]}


@pytest.mark.parametrize(
    "text,msg",
    [
        ("S1\n", "line 1"),
        ("S1 desc A B\n", "tab-separated"),
        ("S1\tdesc\t\t\n", "lists no genes"),
        ("S1\tdesc\tA\nS1\tdesc\tB\n", "appears twice"),
        ("S1\tdesc\tA \n", "whitespace"),
        ("\n\n", "no gene sets"),
    ],
)
def test_malformed_gmt(text: str, msg: str) -> None:
    with pytest.raises(UserInputError, match=msg):
        parse_gmt(text, source="x.gmt")


def test_read_gmt_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="not found"):
        read_gmt(tmp_path / "none.gmt")


def test_resolve_builtin_and_gene_list(tmp_path: Path) -> None:
    assert "HISTONE_GENES" in resolve_gene_sets("builtin:histone")
    assert "H2AX" in read_gene_list("histone")
    f = tmp_path / "genes.txt"
    f.write_text("symbol\nA\nB\n\n")
    assert read_gene_list(str(f)) == ["A", "B"]
