"""The ``pydotcompute`` command: its subcommands, the report it prints, and the input readers
and result writers behind ``-i`` and ``-o``. Nothing else in pydotcompute imports it.
"""

from __future__ import annotations

from ._allocator import (
    keep_freed_memory,
)
from ._command import (
    command_parser,
    main,
)
from ._display import (
    Output,
    Progress,
    print_report,
    toml_value,
)
from ._files import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    STREAMED_FORMATS,
    InputData,
    InputFileError,
    InputRecordError,
    ResultWriter,
    format_of,
    read_input,
    result_rows,
)
from ._graph import (
    pipeline_dot,
    pipeline_mermaid,
)
from ._table_input import (
    TableInput,
    TablePiece,
)
from ._table_output import (
    TableWriter,
)

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "STREAMED_FORMATS",
    "InputData",
    "InputFileError",
    "InputRecordError",
    "Output",
    "Progress",
    "ResultWriter",
    "TableInput",
    "TablePiece",
    "TableWriter",
    "command_parser",
    "format_of",
    "keep_freed_memory",
    "main",
    "pipeline_dot",
    "pipeline_mermaid",
    "print_report",
    "read_input",
    "result_rows",
    "toml_value",
]
