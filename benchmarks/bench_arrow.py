"""What Parquet and Arrow input and output cost the command (issue 13, item 2): records/s
and MB/s of values read through :class:`~pydotcompute.cli.TableInput` (both value
layouts, Parquet and an Arrow IPC file), and of results written through
:class:`~pydotcompute.cli.TableWriter` (a statistic column, and a vector column).

Run: `nox -s bench -- -k bench_arrow` (or pytest benchmarks/bench_arrow.py -o
python_files=bench_*.py). Figures land in each benchmark's extra_info.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydotcompute.cli import TableInput, TableWriter
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices

ROUNDS = 3  # the machine's speed varies between runs: figures are medians of rounds
RECORDS = 500_000
WIDTH = 64  # float32: 128 MB of values
BATCH = 4096


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    return np.random.default_rng(0).random((RECORDS, WIDTH), dtype=np.float32)


def _write(values: np.ndarray, path: Path, layout: str) -> None:
    if layout == "list":
        column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), WIDTH)
        table = pa.table({"values": column})
    else:
        table = pa.table({f"v{j}": values[:, j] for j in range(WIDTH)})
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=1 << 16)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 16)


@pytest.mark.parametrize("layout", ["list", "columns"])
@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_read(benchmark: Any, tmp_path: Path, values: np.ndarray, layout: str, suffix: str) -> None:
    path = tmp_path / f"in{suffix}"
    _write(values, path, layout)
    rates: list[float] = []

    def read() -> None:
        started = time.perf_counter()
        table = TableInput(path, suffix[1:])
        rows = sum(len(piece) for piece in table.pieces())
        assert rows == RECORDS
        rates.append(rows / (time.perf_counter() - started))

    benchmark.pedantic(read, rounds=ROUNDS)
    median = float(np.median(rates))
    benchmark.extra_info.update(
        records_per_s_median=round(median),
        values_mb_per_s_median=round(median * WIDTH * 4 / 1e6),
        records_per_s=[round(r) for r in rates],
    )


def _label(ids: Any) -> list[Any]:
    rows: list[Any] = row_indices(np.asarray(ids, dtype=np.uint64).reshape(-1, 2)).tolist()
    return rows


@pytest.mark.parametrize("result", ["mean", "vector"])
@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_write(benchmark: Any, tmp_path: Path, values: np.ndarray, result: str, fmt: str) -> None:
    ids = record_ids_for_rows(0, RECORDS, run_id=7)
    if result == "mean":
        batches = [
            RecordBatch(values[lo : lo + BATCH, :1], ids[lo : lo + BATCH], columns=("mean",))
            for lo in range(0, RECORDS, BATCH)
        ]
    else:
        batches = [
            RecordBatch(values[lo : lo + BATCH], ids[lo : lo + BATCH], field="normalized")
            for lo in range(0, RECORDS, BATCH)
        ]
    rates: list[float] = []

    def write() -> None:
        started = time.perf_counter()
        writer = TableWriter(tmp_path / f"out.{fmt}", fmt, label=_label)
        for batch in batches:
            writer.write(batch)
        writer.close()
        assert writer.rows == RECORDS
        rates.append(RECORDS / (time.perf_counter() - started))

    benchmark.pedantic(write, rounds=ROUNDS)
    benchmark.extra_info.update(
        records_per_s_median=round(float(np.median(rates))), records_per_s=[round(r) for r in rates]
    )
