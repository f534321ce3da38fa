"""Exceptions shared by the package.

`UserInputError` marks a problem with what the user gave us (a file, a column, an
option). The CLI prints its message on one line and exits with status 2; every other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad user input: the message names the file/column/row and the fix."""
