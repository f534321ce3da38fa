"""Read gene-set collections in GMT format, and the built-in collections shipped with exprlmm.

GMT (Broad): one set per line, tab-separated: ``name <TAB> description <TAB> gene1 <TAB> gene2 ...``.
Set names may contain spaces; empty fields (e.g. a trailing tab) are ignored; a gene listed
twice in one set counts once (first occurrence kept, as GSEA does).

Errors are `UserInputError` with the file, the line and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from exprlmm.errors import UserInputError

__all__ = [
    "BUILTIN_COLLECTIONS",
    "builtin_gene_sets",
    "load_gene_sets",
    "parse_gmt",
    "read_gene_list",
    "read_gmt",
    "removal_genes",
    "resolve_gene_sets",
]

#: Built-in collections: name -> (file under exprlmm/gsea/data, description).
BUILTIN_COLLECTIONS: dict[str, tuple[str, str]] = {
    "histone": ("histone.gmt", "97 protein-coding histone genes (Ensembl 112), one set"),
    "ribosomal": ("ribosomal.gmt", "RPS/RPL ribosomal protein genes (77 core; + paralogs set)"),
    "estimate": ("estimate.gmt", "ESTIMATE immune and stromal signatures (Yoshihara 2013)"),
    "reactome": ("reactome.gmt", "MSigDB v7.2 C2:CP Reactome subset (CC BY 4.0)"),
    "wikipathways": ("wikipathways.gmt", "MSigDB v7.2 C2:CP WikiPathways subset (CC0)"),
}


def parse_gmt(text: str, *, source: str = "<gmt>") -> dict[str, list[str]]:
    """Parse GMT text into ``{set name: [genes]}`` in file order.

    Parameters
    ----------
    text
        The file content.
    source
        Name used in error messages (usually the path).

    Raises
    ------
    UserInputError
        On a line without name/description/gene fields, an empty set, a duplicated set name,
        or a gene name with leading/trailing whitespace.
    """
    sets: dict[str, list[str]] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise UserInputError(
                f"{source}: line {lineno}: expected 'name<TAB>description<TAB>genes...', "
                f"found {len(fields)} tab-separated field(s); GMT files must be tab-separated"
            )
        name = fields[0].strip()
        if not name:
            raise UserInputError(f"{source}: line {lineno}: empty gene-set name in column 1")
        if name in sets:
            raise UserInputError(
                f"{source}: line {lineno}: gene set '{name}' appears twice; rename or remove one"
            )
        genes: list[str] = []
        seen: set[str] = set()
        for col, gene in enumerate(fields[2:], start=3):
            if gene == "":
                continue
            if gene != gene.strip():
                raise UserInputError(
                    f"{source}: line {lineno}, field {col}: gene name {gene!r} has leading or "
                    "trailing whitespace; remove it (GMT fields are separated by single tabs)"
                )
            if gene not in seen:
                seen.add(gene)
                genes.append(gene)
        if not genes:
            raise UserInputError(f"{source}: line {lineno}: gene set '{name}' lists no genes")
        sets[name] = genes
    if not sets:
        raise UserInputError(f"{source}: no gene sets found (is this a GMT file?)")
    return sets


def read_gmt(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a GMT file; see `parse_gmt`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{p}: gene-set file not found") from None
    except UnicodeDecodeError as err:
        raise UserInputError(f"{p}: not a UTF-8 text file ({err.reason})") from None
    return parse_gmt(text, source=str(p))


def builtin_gene_sets(name: str) -> dict[str, list[str]]:
    """Return a built-in collection by name (see `BUILTIN_COLLECTIONS`)."""
    key = name.lower()
    if key not in BUILTIN_COLLECTIONS:
        raise UserInputError(
            f"unknown built-in gene-set collection '{name}'; choose from: "
            + ", ".join(BUILTIN_COLLECTIONS)
        )
    fname = BUILTIN_COLLECTIONS[key][0]
    text = resources.files("exprlmm.gsea").joinpath("data", fname).read_text(encoding="utf-8")
    return parse_gmt(text, source=f"builtin:{key}")


def resolve_gene_sets(spec: str) -> dict[str, list[str]]:
    """A GMT path, or ``builtin:<name>`` / a bare built-in name when no such file exists."""
    if spec.startswith("builtin:"):
        return builtin_gene_sets(spec.split(":", 1)[1])
    if not Path(spec).exists() and spec.lower() in BUILTIN_COLLECTIONS:
        return builtin_gene_sets(spec)
    return read_gmt(spec)


def load_gene_sets(specs: Sequence[str]) -> dict[str, list[str]]:
    """Merge several collections (GMT paths or built-in names); a set name may occur once."""
    merged: dict[str, list[str]] = {}
    for spec in specs:
        for name, genes in resolve_gene_sets(spec).items():
            if name in merged:
                raise UserInputError(f"{spec}: gene set '{name}' is also in an earlier collection")
            merged[name] = genes
    return merged


def removal_genes(spec: str | None) -> tuple[list[str], list[str]]:
    """Genes to remove from the sets (``--remove-genes``) and the set names exempt from it.

    A built-in collection name removes its genes from every other set and exempts its own
    sets (the paper removed the histone genes from all pathways but the histone set).
    """
    if spec is None:
        return [], []
    genes = read_gene_list(spec)
    exempt: list[str] = []
    if spec.lower() in BUILTIN_COLLECTIONS and not Path(spec).exists():
        exempt = list(builtin_gene_sets(spec))
    return genes, exempt


def read_gene_list(spec: str) -> list[str]:
    """Genes to remove: a built-in collection name (all its genes) or a file.

    The file may be a GMT (all genes of all sets) or a plain list (one gene per line, first
    tab-separated column; a header line ``symbol``/``gene`` is skipped).
    """
    if spec.lower() in BUILTIN_COLLECTIONS and not Path(spec).exists():
        sets: Mapping[str, list[str]] = builtin_gene_sets(spec)
        return _union(sets)
    p = Path(spec)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(
            f"{p}: gene list not found; give a file or one of: " + ", ".join(BUILTIN_COLLECTIONS)
        ) from None
    if p.suffix.lower() == ".gmt":
        return _union(parse_gmt(text, source=str(p)))
    genes: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        field = raw.split("\t")[0].strip()
        if not field or field.startswith("#"):
            continue
        if lineno == 1 and field.lower() in {"symbol", "gene", "genes", "gene_symbol"}:
            continue
        genes.append(field)
    if not genes:
        raise UserInputError(f"{p}: no genes found")
    return genes


def _union(sets: Mapping[str, list[str]]) -> list[str]:
    out: dict[str, None] = {}
    for genes in sets.values():
        out.update(dict.fromkeys(genes))
    return list(out)
