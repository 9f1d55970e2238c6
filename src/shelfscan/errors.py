"""The one root of shelfscan's exceptions, and the one way an error becomes a line.

Every exception shelfscan raises on purpose derives from `ShelfscanError`, so a
caller (the CLI, a job handler) can catch "shelfscan said no" with one clause and
let real bugs surface. Errors travel to places that hold one line — a file's
`error` column, a job's `last_error`, stderr — so they are shortened in one
place, `one_line`, rather than cut at a different length by every caller.
"""

from __future__ import annotations

# Long enough for a path and a reason, short enough for a table cell.
ONE_LINE_LIMIT = 300


class ShelfscanError(Exception):
    """Root of every error shelfscan raises deliberately."""


def one_line(error: BaseException | str, limit: int = ONE_LINE_LIMIT) -> str:
    """`error` as a single line of at most `limit` characters.

    Exception groups are unwrapped to their first leaf, so a reader sees
    "connection was closed" rather than "unhandled errors in a TaskGroup".
    """
    if isinstance(error, BaseException):
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        text = str(error).strip() or type(error).__name__
        if isinstance(error, Exception) and not isinstance(error, ShelfscanError):
            name = type(error).__name__
            if not text.startswith(name):
                text = f"{name}: {text}" if str(error).strip() else name
    else:
        text = error
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
