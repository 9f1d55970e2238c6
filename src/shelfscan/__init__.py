"""shelfscan: ebook, comic and audiobook folders into a PostgreSQL catalogue.

structlog imports rich (and with it pygments) when it is installed, to offer pretty
tracebacks, even though shelfscan uses none of that: console lines render exceptions
with `format_exc_info`, JSON lines with `ExceptionDictTransformer(show_locals=False)`
(shelfscan.logs). That import was a quarter of the CLI's start-up, for a small library
most of its run, so structlog is imported here, first, with rich hidden from it. rich
itself stays importable for the progress bar, which loads it only on a terminal.
"""

import sys as _sys


def _import_structlog_without_rich() -> None:
    if "structlog" in _sys.modules or "rich" in _sys.modules:
        return  # too late to matter, or rich is wanted anyway
    _sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` -> ImportError
    try:
        import structlog  # noqa: F401
    finally:
        if _sys.modules.get("rich", False) is None:
            del _sys.modules["rich"]


_import_structlog_without_rich()
