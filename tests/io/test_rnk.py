"""Ranking readers: .rnk and assoc result tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from exprlmm.errors import UserInputError
from exprlmm.io.rnk import read_ranking_table, read_rnk


def _w(tmp_path: Path, text: str, name: str = "r.rnk") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_header_comments_missing_scores(tmp_path: Path) -> None:
    s = read_rnk(_w(tmp_path, "# comment\ngene\tscore\nA\t1.5\nB\tNA\nC\t\nD\t-2e-1\n"))
    assert s.to_dict() == {"A": 1.5, "D": -0.2}


@pytest.mark.parametrize(
    "text,msg",
    [
        ("A\t1\nB\tabc\n", "line 2.*not a number"),
        ("A 1\n", "no tab"),
        ("A\t1\nA\t2\n", "already listed on line 1"),
        (" A\t1\n", "whitespace"),
        ("gene\tscore\n", "no genes"),
    ],
)
def test_bad_rnk(tmp_path: Path, text: str, msg: str) -> None:
    with pytest.raises(UserInputError, match=msg):
        read_rnk(_w(tmp_path, text))


def test_ranking_table_model_and_column(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "gene": ["A", "B", "A", "B"],
            "stat": [1.0, -1.0, 2.0, None],
            "model": ["slr", "slr", "lmm", "lmm"],
        }
    )
    p = tmp_path / "res.tsv"
    df.to_csv(p, sep="\t", index=False)
    with pytest.raises(UserInputError, match="--model"):
        read_ranking_table(p)
    assert read_ranking_table(p, model="lmm").to_dict() == {"A": 2.0}
    with pytest.raises(UserInputError, match="column 'beta' not found"):
        read_ranking_table(p, column="beta", model="slr")
