"""Errors the user fixes, raised as exceptions and shown by the stages as one line."""

import sys
from collections.abc import Callable
from typing import TypeVar

_Result = TypeVar("_Result")


class UserError(Exception):
    """A problem the user fixes (a parameter, the data, the disk): its message is the line to show,
    `error: <what>. Fix: <how>` (tests/test_error_rule.py checks it, and that only run_stage exits)."""


def run_stage(main: Callable[[], _Result]) -> _Result:
    """Run a stage's (or a tool's) main() and return what it returns; a UserError ends the program
    with its one line and exit status 1.

    Library code raises; only this, at the very top of a stage, exits, so that a notebook, a test or
    predict.py calling the library gets an exception it can catch.
    """
    try:
        return main()
    except UserError as error:
        sys.exit(str(error))
