"""Click commands, one module per sub-command; registered in exprlmm.cli."""


def split_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated option value as a tuple of stripped, non-empty items."""
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()
