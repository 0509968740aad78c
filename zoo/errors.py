"""User-facing errors: one line that names the problem and the fix.

Entry points catch `ZooError` and print it without a traceback; anything else
is a bug and keeps its traceback.
"""

import functools
import sys


class ZooError(ValueError):
    """A problem with the user's input (paths, config, data), not a bug."""


def message(err):
    """A ZooError's line. One raised in a DataLoader worker arrives with the worker's traceback in its
    message ("Caught ZooError in DataLoader worker process 0. Original Traceback ..."): its last line holds it."""
    text = str(err)
    if "\nOriginal Traceback" in text:
        text = text.rstrip().splitlines()[-1].split(": ", 1)[-1]
    return text


def exit_on_user_error(main):
    """Wrap an entry point so a `ZooError` prints `error: ...` and exits 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ZooError as err:
            print(f"error: {message(err)}", file=sys.stderr)
            sys.exit(2)

    return wrapper
