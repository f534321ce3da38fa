"""Command-line interface: ``exprlmm <command> ...``.

Thin by design: each sub-command (in :mod:`exprlmm.commands`) parses options, calls the
Python API and writes results atomically. User errors print one line and exit with 2.
"""

from __future__ import annotations

import logging
import sys

import click

from exprlmm import __version__
from exprlmm.errors import UserInputError


class _Group(click.Group):
    """A click group that turns `UserInputError` into a one-line message and exit 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except UserInputError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="exprlmm")
@click.option("-v", "--verbose", count=True, help="More log messages (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """exprlmm: expression–phenotype association with linear mixed models.

    \b
    Typical tumour-cohort run:
      exprlmm icna cohort.seg -o icna.tsv
      exprlmm assoc --expression expr.tsv.gz --samples samples.tsv \\
                    --trait icna --scores icna.tsv --model both -o results.tsv
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


def _register() -> None:
    from exprlmm.commands import assoc, design, gsea, icna, study

    cli.add_command(icna.icna)
    cli.add_command(assoc.assoc)
    cli.add_command(gsea.gsea)
    cli.add_command(design.design)
    cli.add_command(study.study)


_register()


def main() -> None:
    """Entry point of the ``exprlmm`` console script."""
    cli(prog_name="exprlmm")
