"""Logging that reads well in a notebook cell and compares stably under nbval.

Django logs "Internal Server Error: /path" with a full traceback to stderr. In a notebook
that puts machine paths in the output and, because stdout and stderr arrive as separate
streams, can reorder a cell's output. Here each record is one line on stdout, in order
with the cell's own prints, and the exception is named rather than dumped.
"""

import logging
import sys


class OneLineFormatter(logging.Formatter):
    """One line a record, the exception named, no traceback. For example:

    ``[django.request] ERROR Internal Server Error: /boom/ (ZeroDivisionError: division by zero)``
    """

    def format(self, record):
        line = f"[{record.name}] {record.levelname} {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line += f" ({type(exc).__name__}: {exc})"
        return line


class CellHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time, so output lands in the running cell."""

    def __init__(self):
        super().__init__(stream=sys.stdout)

    def emit(self, record):
        self.stream = sys.stdout
        super().emit(record)
