"""``exprlmm icna``: ICNA, FGA and segment counts from a .seg file (owned by the ICNA work)."""

import click


@click.command()
def icna() -> None:
    """Compute ICNA from a .seg file (under construction)."""
    raise click.UsageError("not implemented yet")
