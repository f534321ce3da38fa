"""prerank end to end, gene removal, built-in sets, CLI, plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from exprlmm.cli import cli
from exprlmm.errors import UserInputError
from exprlmm.gsea import COLUMNS, GseaSettings, prerank, rename_columns
from exprlmm.io.gmt import BUILTIN_COLLECTIONS, builtin_gene_sets

matplotlib.use("Agg")


def _data(seed: int = 0) -> tuple[pd.Series, dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(400)]
    scores = pd.Series(rng.normal(size=400), index=genes)
    sets = {
        f"S{j}": list(rng.choice(genes, size=int(rng.integers(15, 40)), replace=False))
        for j in range(8)
    }
    sets["TOP"] = scores.sort_values(ascending=False).index[:20].tolist()
    return scores, sets


FAST = GseaSettings(permutations=300, seed=1, tail="none")


def test_table_columns_and_values() -> None:
    scores, sets = _data()
    res = prerank(scores, sets, FAST)
    t = res.table
    assert list(t.columns) == COLUMNS
    assert len(t) == len(sets)
    assert t["pvalue"].between(0, 1).all() and t["fdr"].between(0, 1).all()
    top = t.set_index("term").loc["TOP"]
    assert top["es"] == pytest.approx(1.0) and top["nes"] > 0 and top["pvalue"] == 0
    assert top["leading_edge"].count(";") == 19
    assert res.record["n_gene_sets_tested"] == len(sets)
    styled = rename_columns(t, "gseapy")
    assert {"Term", "NES", "NOM p-val", "FDR q-val"} <= set(styled.columns)


def test_remove_genes_except_exempt_sets() -> None:
    scores, sets = _data()
    drop = sets["TOP"][:10]
    res = prerank(scores, sets, FAST, remove_genes=drop, exempt_sets=["TOP"])
    sizes = res.table.set_index("term")["size"]
    assert sizes["TOP"] == 20
    for name, genes in sets.items():
        if name != "TOP":
            assert sizes[name] == len(set(genes) - set(drop))


def test_bad_inputs_raise_user_errors() -> None:
    scores, _sets = _data()
    with pytest.raises(UserInputError, match="no gene of any gene set"):
        prerank(scores, {"X": ["nope1", "nope2"]}, FAST)
    with pytest.raises(UserInputError, match="between 15 and 500"):
        prerank(scores, {"X": list(scores.index[:5])}, FAST)
    with pytest.raises(UserInputError):
        GseaSettings(min_size=10, max_size=5)


def test_builtin_collections_load() -> None:
    for name in BUILTIN_COLLECTIONS:
        sets = builtin_gene_sets(name)
        assert sets and all(len(g) > 0 for g in sets.values())
    histone = builtin_gene_sets("histone")["HISTONE_GENES"]
    # 97 current HGNC symbols, then legacy ones (TCGA tables use HIST1H*, H2AF*, ...)
    assert histone[0] == "CENPA" and {"H1-0", "H2AX", "H4C1"} <= set(histone[:97])
    assert {"HIST1H1A", "HIST1H4A", "H2AFX", "H3F3A"} <= set(histone[97:])
    assert len(histone) == len(set(histone))
    assert set(builtin_gene_sets("estimate")) == {
        "ESTIMATE_STROMAL_SIGNATURE",
        "ESTIMATE_IMMUNE_SIGNATURE",
    }
    assert all(k.startswith("REACTOME_") for k in builtin_gene_sets("reactome"))


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    scores, sets = _data()
    rnk = tmp_path / "r.rnk"
    rnk.write_text("".join(f"{g}\t{v:.6f}\n" for g, v in scores.items()))
    gmt = tmp_path / "s.gmt"
    gmt.write_text("".join(f"{k}\tdesc\t" + "\t".join(v) + "\n" for k, v in sets.items()))
    return rnk, gmt


def test_cli_writes_table_and_record(tmp_path: Path) -> None:
    rnk, gmt = _write_inputs(tmp_path)
    out = tmp_path / "g.tsv"
    r = CliRunner().invoke(
        cli,
        [
            "gsea",
            "--rnk",
            str(rnk),
            "--gmt",
            str(gmt),
            "--permutations",
            "200",
            "--seed",
            "149",
            "--tail",
            "none",
            "--q-extrapolation",
            "loess",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out, sep="\t")
    assert "fdr_loess" in t.columns and len(t) == 9
    rec = json.loads((tmp_path / "g.tsv.run.json").read_text())
    assert rec["settings"]["seed"] == 149 and rec["settings"]["permutations"] == 200


def test_cli_ranks_from_assoc_table(tmp_path: Path) -> None:
    scores, _sets = _data()
    tab = pd.DataFrame({"gene": scores.index, "stat": scores.to_numpy(), "pvalue": 0.5})
    both = pd.concat([tab.assign(model="slr"), tab.assign(model="lmm", stat=-tab["stat"])])
    res = tmp_path / "assoc.tsv"
    both.to_csv(res, sep="\t", index=False)
    _, gmt = _write_inputs(tmp_path)
    out = tmp_path / "g.tsv"
    args = [
        "gsea",
        "--results",
        str(res),
        "--gmt",
        str(gmt),
        "--permutations",
        "100",
        "--tail",
        "none",
        "-o",
        str(out),
    ]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and "--model" in r.output
    assert not out.exists()
    r = CliRunner().invoke(cli, [*args, "--model", "lmm"])
    assert r.exit_code == 0, r.output
    top = pd.read_csv(out, sep="\t").set_index("term").loc["TOP"]
    assert top["es"] == pytest.approx(-1.0)  # lmm stat was negated


@pytest.mark.parametrize(
    "content,msg",
    [
        ("S1 only-one-field\n", "tab-separated"),
        ("S1\tdesc\tA\t B\n", "whitespace"),
    ],
)
def test_cli_bad_gmt_exit_2_nothing_written(tmp_path: Path, content: str, msg: str) -> None:
    rnk, _ = _write_inputs(tmp_path)
    gmt = tmp_path / "bad.gmt"
    gmt.write_text(content)
    out = tmp_path / "g.tsv"
    r = CliRunner().invoke(cli, ["gsea", "--rnk", str(rnk), "--gmt", str(gmt), "-o", str(out)])
    assert r.exit_code == 2
    assert msg in r.output and "line 1" in r.output
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []


def test_plots_return_axes() -> None:
    import matplotlib.pyplot as plt

    from exprlmm.pl import enrichment_plot, nes_barplot

    scores, sets = _data()
    res = prerank(scores, sets, FAST)
    _fig, (a1, a2) = plt.subplots(1, 2)
    assert enrichment_plot(res, "TOP", ax=a1) is a1
    assert nes_barplot(res.table, terms=["TOP", "S1"], ax=a2) is a2
    assert len(a2.patches) == 2
    ax = enrichment_plot(res, "S2")
    assert ax.get_xlim()[1] == 399
    plt.close("all")
