"""``exprlmm study``: the paper's analysis on one or more cohorts from a TOML file."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import click

from exprlmm.errors import UserInputError


@click.command(context_settings={"show_default": True})
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--cohort",
    "cohorts",
    multiple=True,
    metavar="NAME:key=value,...",
    help="A cohort without a TOML file, e.g. "
    "ACC:expression=expr.tsv.gz,samples=samples.tsv,seg=acc.seg,purity_column=aran_CPE "
    "(repeatable; adds to the file's cohorts).",
)
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Output folder.")
@click.option("--permutations", type=int, help="GSEA permutations (overrides [gsea]).")
@click.option("--seed", type=int, help="Study seed (overrides 'seed').")
@click.option("--threads", type=int, help="BLAS threads (overrides 'threads').")
@click.option("--force", is_flag=True, help="Recompute every step, even those up to date.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--no-report", is_flag=True, help="Tables only: no figures, no report.html.")
@click.option(
    "--workers",
    type=int,
    help="Run on a local dask cluster of N worker processes: scans in gene chunks, each GSEA "
    "ranking and each subsample a task of its own (extra [dask]). Same results as without.",
)
@click.option(
    "--worker-threads",
    "worker_threads",
    is_flag=True,
    help="With --workers: threads of this process instead of processes.",
)
@click.option("--scheduler", help="Use the dask scheduler at this address instead.")
@click.option(
    "--scheduler-timeout", type=float, default=10.0, help="Seconds to wait for --scheduler."
)
def study(
    config,
    cohorts,
    output,
    permutations,
    seed,
    threads,
    force,
    quiet,
    no_report,
    workers,
    worker_threads,
    scheduler,
    scheduler_timeout,
) -> None:
    """Run the study in CONFIG (TOML; see docs/study.md): ICNA, purity-associated genes, SLR /
    LMM / LMM with K rebuilt without the purity genes, GSEA, subsampling, figures, report.

    Rerunning skips every step whose inputs and settings are unchanged, so an interrupted run
    resumes where it stopped.
    """
    from exprlmm.study.config import parse_cohort_option, read_study_file, study_config_from_dict
    from exprlmm.study.runner import run_study

    if config is None and not cohorts:
        raise UserInputError("give a study TOML file or at least one --cohort")
    if config is not None:
        data = read_study_file(config)
        base, source = Path(config).resolve().parent, str(config)
    else:
        data, base, source = {}, Path.cwd(), "--cohort options"
    data.setdefault("cohorts", [])
    data["cohorts"] = [*data["cohorts"], *(parse_cohort_option(c) for c in cohorts)]
    if output is not None:
        data["output"] = str(Path(output).resolve())
    if seed is not None:
        data["seed"] = seed
    if threads is not None:
        data["threads"] = threads
    if permutations is not None:
        data.setdefault("gsea", {})["permutations"] = permutations
    cfg = study_config_from_dict(data, base=base, source=source)
    if worker_threads and workers is None:
        raise UserInputError("--worker-threads applies to a local cluster: add --workers N")
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        client = None
        if workers is not None or scheduler is not None:
            from exprlmm.assoc.distributed import open_client

            client = stack.enter_context(
                open_client(
                    workers=workers,
                    scheduler=scheduler,
                    timeout=scheduler_timeout,
                    processes=not worker_threads,
                )
            )
        result = run_study(
            cfg, force=force, progress=not quiet, report=not no_report, client=client
        )
    where = f"report {result.report}" if result.report else f"tables in {result.output}"
    click.echo(
        f"study: {len(result.steps_run)} steps run, {len(result.steps_skipped)} up to date, "
        f"{time.perf_counter() - t0:.1f} s; {where}"
    )
