"""Parquet and Arrow IPC for the command-line tool: what the reader
(:mod:`._table_input`) and the writer (:mod:`._table_output`) share.

Both stream: input is read a row group or record batch at a time (in pieces of about
8 MiB of values), output written a row group or record batch per 64 Ki results, so
memory follows the pipeline's batches, not the file. pyarrow is imported only when such
a file is used; without it the error names the ``arrow`` extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from ..errors import InputFileError

__all__ = ["NAMES", "TABLE_FORMATS", "load_pyarrow", "said"]

#: The formats read and written through pyarrow: Parquet, Arrow IPC file, Arrow IPC stream.
TABLE_FORMATS: Final = ("parquet", "arrow", "arrows")
#: What the messages call each format.
NAMES: Final = {"parquet": "Parquet", "arrow": "Arrow IPC", "arrows": "Arrow IPC stream"}
_EXTRA: Final = "pip install 'pydotcompute[arrow]'"


def load_pyarrow(path: str, fmt: str) -> ModuleType:
    """pyarrow (and ``pyarrow.parquet`` for Parquet), imported now.

    Raises:
        InputFileError: pyarrow is not installed, naming the extra that brings it.
    """
    try:
        pa = importlib.import_module("pyarrow")
        importlib.import_module("pyarrow.parquet" if fmt == "parquet" else "pyarrow.ipc")
    except ImportError as exc:
        raise InputFileError(
            path,
            f"{NAMES[fmt]} files need pyarrow, which is not installed ({exc}): {_EXTRA}",
        ) from None
    return pa


def said(exc: BaseException) -> str:
    """An Arrow error's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__
