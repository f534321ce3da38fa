"""``exprlmm assoc``: SLR and LMM association scan."""

import click


@click.command()
def assoc() -> None:
    """Association scan (under construction)."""
    raise click.UsageError("not implemented yet")
