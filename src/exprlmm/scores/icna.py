"""ICNA, fraction of genome altered and segment counts from segmented copy number.

Pure functions: a segment table in (as returned by :func:`exprlmm.io.seg.read_seg`), a
tidy per-sample table out. No file I/O, no printing.

Definitions, for sample ``n`` with scored segments ``s`` (length ``L_s = end_s − start_s + 1``,
value ``v_s`` = log2 copy ratio)::

    c_s      = |v_s|            (value="log2", the default)
             = |2**v_s − 1|     (value="linear": relative change of the copy ratio)
    ICNA_n   = Σ_s L_s · c_s · [c_s ≥ min_abs_change]
    FGA_n    = Σ_s L_s · [|v_s| > fga_threshold] / Σ_s L_s
    n_segments_n = number of scored segments

ICNA (integrated copy-number alteration) is the length-weighted total absolute copy-number
change of a genome: the aneuploidy score whose association with expression exprlmm tests.
The fraction of genome altered always uses the log2 value (whatever ``value`` is), with the
common cut-off ``|log2 ratio| > 0.2`` by default (a copy ratio above 1.149 or below 0.871,
i.e. a change of about 15 %, above the noise of array segment means).

Scored segments are those with a value (NA values are skipped) on chromosomes that are not
excluded. Mitochondrial segments (``MT``) are never scored: mtDNA copy number is not
aneuploidy. A sample whose segments are all skipped is kept with ``icna`` and ``fga`` NaN
and ``n_segments`` 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from exprlmm.errors import UserInputError
from exprlmm.io.seg import CHROMOSOMES, normalize_chromosome, validate_segments

__all__ = [
    "ICNA_COLUMNS",
    "NEVER_SCORED",
    "IcnaSettings",
    "ValueScale",
    "icna_scores",
    "is_tcga_barcode",
    "is_tcga_tumor",
    "tcga_sample_type",
]

ValueScale = Literal["log2", "linear"]

#: Columns of the table returned by :func:`icna_scores` (its index is ``sample``).
ICNA_COLUMNS: tuple[str, ...] = ("icna", "fga", "n_segments")

#: Chromosomes never scored.
NEVER_SCORED: tuple[str, ...] = ("MT",)


@dataclass(frozen=True)
class IcnaSettings:
    """Settings of an ICNA computation (what goes into a run record).

    Attributes
    ----------
    value
        ``"log2"``: the segment value is a log2 copy ratio and its change is ``|v|``;
        ``"linear"``: the change is ``|2**v − 1|``.
    min_abs_change
        Segments whose change is below this contribute 0 to ICNA (they still count in
        ``n_segments`` and in the FGA denominator).
    exclude_chromosomes
        Chromosomes left out of all three scores (any spelling ``normalize_chromosome``
        accepts: ``"X"``, ``"chrX"``, ``"23"``; a comma-separated string works too);
        stored in canonical form.
    fga_threshold
        A segment is "altered" for FGA when ``|log2 value| > fga_threshold``.
    """

    value: ValueScale = "log2"
    min_abs_change: float = 0.0
    exclude_chromosomes: tuple[str, ...] = field(default=())
    fga_threshold: float = 0.2

    def __post_init__(self) -> None:
        if self.value not in get_args(ValueScale):
            raise UserInputError(
                f"value={self.value!r} is not one of {', '.join(get_args(ValueScale))}"
            )
        for name in ("min_abs_change", "fga_threshold"):
            number = getattr(self, name)
            if not (isinstance(number, (int, float)) and math.isfinite(number) and number >= 0):
                raise UserInputError(f"{name}={number!r}: use a finite number >= 0")
            object.__setattr__(self, name, float(number))
        object.__setattr__(
            self, "exclude_chromosomes", _canonical_chromosomes(self.exclude_chromosomes)
        )

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready plain types."""
        record = asdict(self)
        record["exclude_chromosomes"] = list(self.exclude_chromosomes)
        return record


def _canonical_chromosomes(names: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [part for part in names.split(",") if part.strip()]
    canonical: list[str] = []
    for name in names:
        canon = normalize_chromosome(str(name))
        if canon is None:
            raise UserInputError(
                f"exclude_chromosomes: {name!r} is not a chromosome; use names like X, Y, "
                "chrX, 23 or 1-22 separated by commas"
            )
        if canon not in canonical:
            canonical.append(canon)
    return tuple(canonical)


def icna_scores(
    segments: pd.DataFrame,
    *,
    value: ValueScale = "log2",
    min_abs_change: float = 0.0,
    exclude_chromosomes: Iterable[str] | str = (),
    fga_threshold: float = 0.2,
) -> pd.DataFrame:
    r"""ICNA, fraction of genome altered and number of segments per sample.

    .. math::

        \mathrm{ICNA}_n = \sum_{s \in n} (e_s - b_s + 1)\, c_s\, [c_s \ge m],
        \qquad c_s = |v_s| \text{ (log2)} \text{ or } |2^{v_s} - 1| \text{ (linear)}

        \mathrm{FGA}_n = \frac{\sum_{s} (e_s - b_s + 1)\, [|v_s| > t]}{\sum_{s} (e_s - b_s + 1)}

    with ``b_s``, ``e_s`` the 1-based inclusive start and end, ``v_s`` the log2 copy
    ratio, ``m = min_abs_change`` and ``t = fga_threshold``.

    Parameters
    ----------
    segments
        Segment table with columns ``sample``, ``chrom`` (canonical names), ``start``,
        ``end``, ``value`` — as returned by :func:`exprlmm.io.seg.read_seg`. Checked with
        :func:`exprlmm.io.seg.validate_segments` (overlaps are an error). Not modified.
    value, min_abs_change, exclude_chromosomes, fga_threshold
        See :class:`IcnaSettings`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``sample`` (every sample of ``segments``, in order of first
        appearance), columns ``icna`` (float, bases × change), ``fga`` (float in [0, 1])
        and ``n_segments`` (int: segments scored). Segments with a NaN value, on an
        excluded chromosome or on ``MT`` are not scored; a sample left with none has
        ``icna`` and ``fga`` NaN and ``n_segments`` 0. The result does not depend on
        the order of the rows.

    Raises
    ------
    UserInputError
        Invalid settings, missing columns, overlapping segments, ``end < start`` or
        infinite values.
    """
    settings = IcnaSettings(
        value=value,
        min_abs_change=min_abs_change,
        exclude_chromosomes=_canonical_chromosomes(exclude_chromosomes),
        fga_threshold=fga_threshold,
    )
    source = segments.attrs.get("source", "segments")
    missing = [c for c in ("sample", "chrom", "start", "end", "value") if c not in segments]
    if missing:
        raise UserInputError(
            f"{source}: missing column(s) {', '.join(missing)}; columns are: "
            f"{', '.join(map(str, segments.columns))}"
        )
    validate_segments(segments)
    values = segments["value"].to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        i = int(np.flatnonzero(np.isinf(values))[0])
        where = f"line {segments['line'].iloc[i]}" if "line" in segments else f"row {i}"
        raise UserInputError(
            f"{source}, {where}: value is infinite; replace it by a finite floor or NaN"
        )

    codes, names = pd.factorize(segments["sample"].to_numpy(), sort=False)
    samples = pd.Index(names, name="sample")
    chrom = segments["chrom"].to_numpy()
    chrom_rank = pd.Index(CHROMOSOMES).get_indexer(chrom)
    skipped = [CHROMOSOMES.index(c) for c in (*settings.exclude_chromosomes, *NEVER_SCORED)]
    scored = ~np.isnan(values) & ~np.isin(chrom_rank, skipped)
    start = segments["start"].to_numpy(dtype=np.int64)[scored]
    end = segments["end"].to_numpy(dtype=np.int64)[scored]
    v = values[scored]
    codes, chrom_rank = codes[scored], chrom_rank[scored]
    # Sum each sample's segments in genome order, so the result does not depend on the
    # order of the rows (bincount adds in array order).
    order = np.lexsort((start, chrom_rank, codes))
    start, end, v, codes = start[order], end[order], v[order], codes[order]

    length = (end - start + 1).astype(np.float64)
    change = np.abs(v) if settings.value == "log2" else np.abs(np.exp2(v) - 1.0)
    contribution = np.where(change >= settings.min_abs_change, length * change, 0.0)
    altered = np.where(np.abs(v) > settings.fga_threshold, length, 0.0)

    n = len(samples)
    n_segments = np.bincount(codes, minlength=n).astype(np.int64)
    has = n_segments > 0
    icna = np.where(has, np.bincount(codes, weights=contribution, minlength=n), np.nan)
    total = np.bincount(codes, weights=length, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        fga = np.where(has, np.bincount(codes, weights=altered, minlength=n) / total, np.nan)
    return pd.DataFrame({"icna": icna, "fga": fga, "n_segments": n_segments}, index=samples)


# --------------------------------------------------------------------------------------
# TCGA barcodes
# --------------------------------------------------------------------------------------

# TCGA-<TSS>-<participant>-<sample type><vial>...; R's make.names turns '-' into '.'.
_TCGA = re.compile(r"^TCGA[-.][A-Z0-9]{2}[-.][A-Z0-9]{4}[-.](\d{2})", re.IGNORECASE)


def _ids(sample_ids: Iterable[str] | str) -> list[str]:
    if isinstance(sample_ids, str):
        return [sample_ids]
    return [str(s).strip() for s in sample_ids]


def is_tcga_barcode(sample_ids: Iterable[str]) -> np.ndarray:
    """True where an ID is a TCGA barcode with a sample-type field.

    A barcode starts ``TCGA-TSS-PPPP-TT`` (``TT`` = sample type, characters 14-15);
    ``.`` separators (as R writes column names) are accepted; longer aliquot barcodes
    (``TCGA-OR-A5J1-01A-11D-A29I-01``) match too.

    Returns
    -------
    numpy.ndarray of bool, one per ID.
    """
    return np.array([_TCGA.match(s) is not None for s in _ids(sample_ids)], dtype=bool)


def tcga_sample_type(sample_ids: Iterable[str]) -> pd.arrays.IntegerArray:
    """Sample-type code (characters 14-15 of a TCGA barcode) per ID; NA for non-barcodes.

    01-09 are tumours (01 primary solid tumour, 02 recurrent, 03 primary blood cancer,
    06 metastatic, ...), 10-19 normals (10 blood, 11 solid tissue), 20 and above controls
    and cell lines.
    """
    codes = [_TCGA.match(s) for s in _ids(sample_ids)]
    return pd.array([int(m.group(1)) if m else pd.NA for m in codes], dtype="Int64")


def is_tcga_tumor(sample_ids: Sequence[str] | Iterable[str]) -> np.ndarray:
    """True where an ID is a TCGA barcode with a tumour sample type (01-09).

    Non-TCGA IDs are False.
    """
    types = tcga_sample_type(sample_ids)
    return ((types >= 1) & (types <= 9)).fillna(False).to_numpy(dtype=bool)
