"""``exprlmm icna``: ICNA, FGA and segment counts from a .seg file."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

import click
import numpy as np
import pandas as pd

from exprlmm import __version__
from exprlmm.commands import split_list
from exprlmm.errors import UserInputError
from exprlmm.io.atomic import atomic_path, write_text_atomic
from exprlmm.io.seg import read_seg
from exprlmm.scores.icna import (
    NEVER_SCORED,
    IcnaSettings,
    icna_scores,
    is_tcga_barcode,
    is_tcga_tumor,
    tcga_sample_type,
)


def _run_record_path(output: Path) -> Path:
    return output.with_name(output.name + ".run.json")


@click.command()
@click.argument("seg", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Output TSV (columns: sample icna fga n_segments; gzip-compressed if the name "
    "ends in .gz); a run record is written next to it as <output>.run.json.",
)
@click.option(
    "--value",
    type=click.Choice(["log2", "linear"]),
    default="log2",
    show_default=True,
    help="Change per segment: |v| for log2 ratios, |2^v - 1| for the linear copy ratio.",
)
@click.option(
    "--value-column",
    metavar="NAME",
    default=None,
    help="Header of the value column, if not the automatic choice (seg.mean, "
    "Segment_Mean, LOG2_COPY_RATIO_POSTERIOR_50, MEAN_LOG2_COPY_RATIO, log2, ...).",
)
@click.option(
    "--min-abs-change",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Segments whose |change| is below this contribute 0 to ICNA.",
)
@click.option(
    "--exclude-chromosomes",
    metavar="LIST",
    default="",
    help='Comma-separated chromosomes to leave out, e.g. "X,Y" (chrX and 23 work too). '
    "MT is always left out.",
)
@click.option(
    "--fga-threshold",
    type=click.FloatRange(min=0),
    default=0.2,
    show_default=True,
    help="FGA counts segments with |log2 value| above this.",
)
@click.option(
    "--tumor-only/--no-tumor-only",
    default=None,
    help="Keep only TCGA tumour samples (barcode sample type 01-09). "
    "Default: on when every sample ID is a TCGA barcode, off otherwise.",
)
def icna(
    seg: Path,
    output: Path,
    value: str,
    value_column: str | None,
    min_abs_change: float,
    exclude_chromosomes: str,
    fga_threshold: float,
    tumor_only: bool | None,
) -> None:
    """Compute ICNA, fraction of genome altered and segment counts from SEG.

    \b
    ICNA  = sum over segments of (end - start + 1) * |change|
    FGA   = length with |log2 value| > --fga-threshold / total scored length
    Segments with a missing value (NA) are skipped and counted in the summary;
    mitochondrial segments are never scored.

    \b
    Example:
      exprlmm icna cohort.seg -o icna.tsv --exclude-chromosomes X,Y
    """
    settings = IcnaSettings(
        value=value,  # type: ignore[arg-type]
        min_abs_change=min_abs_change,
        exclude_chromosomes=split_list(exclude_chromosomes),
        fga_threshold=fga_threshold,
    )
    if output.exists() and seg.exists() and output.resolve() == seg.resolve():
        raise UserInputError(f"{output}: the output would overwrite the input; choose another -o")
    segments = read_seg(seg, value_column=value_column)
    ids = pd.unique(segments["sample"].to_numpy())
    n_samples_read = len(ids)
    n_segments_read = len(segments)

    all_tcga = bool(is_tcga_barcode(ids).all())
    if tumor_only is None:
        use_tumor_only, tumor_only_source = all_tcga, "auto"
    else:
        use_tumor_only, tumor_only_source = tumor_only, "option"
    dropped_types: dict[str, int] = {}
    if use_tumor_only:
        if not all_tcga:
            first = ids[~is_tcga_barcode(ids)][0]
            raise UserInputError(
                f"{seg}: --tumor-only needs TCGA barcodes, but sample {first!r} is not one; "
                "use --no-tumor-only"
            )
        keep_ids = ids[is_tcga_tumor(ids)]
        if len(keep_ids) == 0:
            raise UserInputError(
                f"{seg}: none of the {len(ids)} TCGA samples is a tumour (sample type 01-09); "
                "use --no-tumor-only to score them all"
            )
        dropped = ids[~is_tcga_tumor(ids)]
        for code in tcga_sample_type(dropped):
            key = f"{int(code):02d}"
            dropped_types[key] = dropped_types.get(key, 0) + 1
        segments = segments[segments["sample"].isin(keep_ids)]

    scores = icna_scores(segments, **settings.as_dict())

    values = segments["value"].to_numpy()
    chrom = segments["chrom"]
    counts = {
        "segments_read": int(n_segments_read),
        "samples_read": int(n_samples_read),
        "samples_dropped_not_tumor": int(n_samples_read - len(scores)),
        "samples_written": len(scores),
        "samples_without_scored_segments": int((scores["n_segments"] == 0).sum()),
        "segments_in_kept_samples": len(segments),
        "segments_scored": int(scores["n_segments"].sum()),
        "segments_skipped_missing_value": int(np.isnan(values).sum()),
        "segments_skipped_mitochondrial": int(chrom.isin(NEVER_SCORED).sum()),
        "segments_skipped_excluded_chromosomes": int(
            chrom.isin(settings.exclude_chromosomes).sum()
        ),
        "dropped_sample_types": dropped_types,
    }

    with atomic_path(output) as tmp:
        scores.to_csv(
            tmp,
            sep="\t",
            na_rep="NA",
            lineterminator="\n",
            compression="gzip" if output.name.endswith(".gz") else None,
        )
    record = {
        "command": "exprlmm icna",
        "exprlmm_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "input": {
            "path": str(seg.resolve()),
            "sha256": segments.attrs.get("sha256"),
            "columns": segments.attrs.get("columns"),
            "value_column": segments.attrs.get("value_column"),
            "comment_lines": segments.attrs.get("n_comment_lines"),
            "repeated_header_lines": segments.attrs.get("n_repeated_headers"),
        },
        "settings": {
            **settings.as_dict(),
            "never_scored_chromosomes": list(NEVER_SCORED),
            "missing_values": "skipped",
            "tumor_only": use_tumor_only,
            "tumor_only_from": tumor_only_source,
        },
        "counts": counts,
        "output": str(output.resolve()),
    }
    run_record = _run_record_path(output)
    write_text_atomic(run_record, json.dumps(record, indent=2) + "\n")

    lines = [
        f"read {n_segments_read} segments of "
        f"{n_samples_read} samples from {seg} (value column {segments.attrs['value_column']!r}, "
        f"scored as {settings.value})"
    ]
    if use_tumor_only:
        types = ", ".join(f"{n} of type {t}" for t, n in sorted(dropped_types.items()))
        lines.append(
            f"tumour samples only (TCGA sample type 01-09, {tumor_only_source}): "
            f"kept {len(scores)}, dropped {n_samples_read - len(scores)}"
            + (f" ({types})" if types else "")
        )
    else:
        lines.append(f"kept all {len(scores)} samples (no tumour filter)")
    skipped = [
        f"{counts[key]} {label}"
        for key, label in (
            ("segments_skipped_missing_value", "with missing value"),
            ("segments_skipped_mitochondrial", "on MT"),
            ("segments_skipped_excluded_chromosomes", "on excluded chromosomes"),
        )
        if counts[key]
    ]
    if skipped:
        lines.append("segments skipped: " + ", ".join(skipped))
    if counts["samples_without_scored_segments"]:
        lines.append(
            f"{counts['samples_without_scored_segments']} samples have no scored segment "
            "(icna and fga written as NA)"
        )
    lines.append(f"wrote {len(scores)} samples to {output} (run record {run_record})")
    click.echo("\n".join(lines))
