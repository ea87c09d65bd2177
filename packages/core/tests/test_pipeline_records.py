"""Pipeline messages and record ids: shapes checked, ids that round-trip, batching helpers."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from pydotcompute import MessageValidationError, records_from_array
from pydotcompute.dataflow import count_records
from pydotcompute.stage import (
    EndOfStream,
    Record,
    RecordBatch,
    StageError,
    array_to_ids,
    ids_to_array,
    new_record_ids,
    payload_of,
    record_count,
    record_ids_for_rows,
    root_id,
    row_index,
    row_indices,
    sort_batch,
    stack_records,
)


def test_ids_round_trip_through_arrays() -> None:
    ids = [uuid.uuid4() for _ in range(5)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    arr = ids_to_array(ids)
    assert arr.shape == (7, 2) and arr.dtype == np.uint64
    assert array_to_ids(arr) == ids
    assert ids_to_array([]).shape == (0, 2)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        array_to_ids(np.zeros(3))


def test_row_ids_are_version_4_uuids_that_encode_the_row() -> None:
    ids = record_ids_for_rows(10, 5, run_id=0xDEADBEEF)
    uuids = array_to_ids(ids)
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in uuids)
    assert row_indices(ids).tolist() == [10, 11, 12, 13, 14]
    assert [row_index(u) for u in uuids] == [10, 11, 12, 13, 14]
    assert len({u.int >> 64 for u in uuids}) == 1  # one run, one high half
    other = record_ids_for_rows(10, 5, run_id=0xFEED)
    assert (other[:, 0] != ids[:, 0]).all()
    with pytest.raises(ValueError, match="row indices must lie in"):
        record_ids_for_rows(-1, 2, 0)


def test_new_record_ids_are_random_version_4() -> None:
    ids = new_record_ids(1000)
    uuids = array_to_ids(ids)
    assert len(set(uuids)) == 1000 and all(u.version == 4 for u in uuids)
    assert new_record_ids(0).shape == (0, 2)


def test_root_id_is_the_correlation_id_when_set() -> None:
    first = Record(values=[1.0])
    assert root_id(first) == first.message_id
    reply = Record(values=[2.0], correlation_id=first.message_id)
    assert root_id(reply) == first.message_id


def test_record_batch_checks_shapes_and_names_the_field() -> None:
    ids = record_ids_for_rows(0, 3, 1)
    batch = RecordBatch(values=[[1, 2], [3, 4], [5, 6]], record_ids=ids, keys=[1, 2, 3])
    assert len(batch) == 3 and batch.keys.dtype == np.int64 and isinstance(batch.values, np.ndarray)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"values": np.zeros(3), "record_ids": ids}, "values must be 2-D"),
        ({"values": np.zeros((2, 2)), "record_ids": ids}, r"record_ids must be \(2, 2\) uint64"),
        ({"values": np.zeros((3, 2)), "record_ids": ids.astype(np.int64)}, "record_ids must be"),
        ({"values": np.zeros((3, 2)), "record_ids": ids, "keys": [1.5, 2, 3]}, "keys must be"),
        ({"values": np.zeros((3, 2)), "record_ids": ids, "counts": [1, 2]}, "counts must be"),
        ({"values": np.zeros((3, 2)), "record_ids": ids, "columns": ("a",)}, "columns names 1"),
    ]
    for fields, match in cases:
        with pytest.raises(MessageValidationError, match=match):
            RecordBatch(**fields)


def test_record_batch_take_keeps_everything_aligned() -> None:
    ids = record_ids_for_rows(0, 4, 1)
    batch = RecordBatch(
        values=np.arange(8.0).reshape(4, 2),
        record_ids=ids,
        keys=[9, 8, 7, 6],
        columns=("a", "b"),
        counts=[1, 2, 3, 4],
    )
    part = batch.take(np.array([3, 1]))
    assert part.values.tolist() == [[6.0, 7.0], [2.0, 3.0]]
    assert row_indices(part.record_ids).tolist() == [3, 1]
    assert part.keys.tolist() == [6, 8] and part.counts.tolist() == [4, 2]
    assert part.columns == ("a", "b") and part.correlation_id == batch.message_id


def test_pipeline_messages_travel_on_the_wire() -> None:
    ids = record_ids_for_rows(0, 2, 1)
    batch = RecordBatch(
        values=np.ones((2, 3), np.float32), record_ids=ids, keys=[1, 2], columns=("a", "b", "c")
    )
    back = RecordBatch.from_bytes(batch.to_bytes())
    assert back.columns == ("a", "b", "c") and (back.record_ids == ids).all()
    np.testing.assert_array_equal(back.values, batch.values)
    error = StageError(stage="s", kernel="s_1", error="E: x", record_ids=ids)
    assert StageError.from_bytes(error.to_bytes()).record_ids.tolist() == ids.tolist()
    assert EndOfStream.from_bytes(EndOfStream(source="k").to_bytes()).source == "k"
    assert Record.from_bytes(Record(values=[1.0, 2.0], key=3).to_bytes()).key == 3


def test_payload_of_reads_each_kind_of_record() -> None:
    from dataclasses import dataclass

    from pydotcompute import message

    @message
    @dataclass
    class Norm:
        normalized: list[float]

    @message
    @dataclass
    class Stats:
        stats: dict[str, float]

    @message
    @dataclass
    class Result:
        result: float

    @message
    @dataclass
    class Nothing:
        text: str

    assert payload_of(Record(values=[1.0])) == ([1.0], (), "values")
    assert payload_of(Norm(normalized=[0.5])) == ([0.5], (), "normalized")
    assert payload_of(Stats(stats={"mean": 1.0, "std": 2.0})) == (
        [1.0, 2.0],
        ("mean", "std"),
        "stats",
    )
    assert payload_of(Result(result=3.0)) == ([3.0], ("result",), "result")
    with pytest.raises(TypeError, match="a Nothing carries no record"):
        payload_of(Nothing(text="x"))


def test_sort_batch_separates_kinds_in_order() -> None:
    ids = record_ids_for_rows(0, 1, 1)
    r1, r2 = Record(values=[1.0]), Record(values=[2.0])
    b = RecordBatch(values=np.ones((1, 1)), record_ids=ids)
    e = StageError(stage="s", kernel="s", error="x", record_ids=ids)
    parts = sort_batch([r1, b, EndOfStream(source="a"), e, r2, EndOfStream(source="b")])
    assert (
        parts.records == [r1, r2]
        and parts.batches == [b]
        and parts.errors == [e]
        and [m.source for m in parts.ends] == ["a", "b"]
    )
    assert [record_count(m) for m in (r1, b, e)] == [1, 1, 1]


def test_records_are_counted_one_way() -> None:
    ids = record_ids_for_rows(0, 3, 1)
    batch = RecordBatch(values=np.ones((3, 2)), record_ids=ids)
    error = StageError(stage="s", kernel="s", error="x", record_ids=ids[:2])
    msgs = [Record(values=[1.0]), batch, error, EndOfStream(source="a"), Record(values=[2.0])]
    assert [record_count(m) for m in msgs] == [1, 3, 2, 0, 1]
    assert count_records(msgs) == sum(map(record_count, msgs)) == 7
    assert count_records(msgs, errors=False) == 5  # records sent on; failed ones apart
    assert count_records([]) == 0


def test_stack_records_fast_path_is_one_group_in_order() -> None:
    records = list(records_from_array(np.arange(12.0).reshape(4, 3), columnar=False))
    groups, bad = stack_records(records)
    assert bad == [] and len(groups) == 1
    assert groups[0].records == records and groups[0].values.dtype == np.float64
    np.testing.assert_array_equal(groups[0].values, np.arange(12.0).reshape(4, 3))


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([16777217, 3], np.float64),  # Python numbers: float64, exact past 2**24
        ([0.1, 0.2], np.float64),
        (np.array([1, 2], dtype=np.float16), np.float16),  # float arrays keep their dtype
        (np.array([1, 2], dtype=np.float32), np.float32),
        (np.array([1, 2], dtype=np.int32), np.float64),
    ],
)
def test_stack_records_keeps_precision(values: object, dtype: type[np.floating]) -> None:
    (group,), bad = stack_records([Record(values=values), Record(values=values)])
    assert bad == [] and group.values.dtype == dtype
    np.testing.assert_array_equal(group.values[0], np.asarray(values, dtype=dtype))


def test_stack_records_groups_widths_and_sets_bad_records_aside() -> None:
    records = [
        Record(values=[1.0, 2.0]),
        Record(values=[3.0]),
        Record(values="abc"),
        Record(values=[[1.0], [2.0]]),
        Record(values=[4.0, 5.0]),
        Record(values=None),
    ]
    groups, bad = stack_records(records)
    assert [(g.values.tolist(), g.records) for g in groups] == [
        ([[1.0, 2.0], [4.0, 5.0]], [records[0], records[4]]),
        ([[3.0]], [records[1]]),
    ]
    assert [r for r, _ in bad] == [records[2], records[3], records[5]]
    assert "1-D" in bad[1][1] and "carries no record" in bad[2][1]


def test_stack_records_of_nothing() -> None:
    assert stack_records([]) == ([], [])


def test_records_from_array_per_message_and_columnar() -> None:
    x = np.arange(10.0).reshape(5, 2)
    batches = list(records_from_array(x, batch_size=2, keys=[5, 4, 3, 2, 1], run_id=3))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert batches[2].keys.tolist() == [1] and row_indices(batches[2].record_ids).tolist() == [4]
    singles = list(records_from_array(x, columnar=False, run_id=3, start=100))
    assert [row_index(r.message_id) for r in singles] == [100, 101, 102, 103, 104]
    assert singles[0].values.dtype == np.float64  # a float array keeps its dtype
    with pytest.raises(ValueError, match="2-D"):
        list(records_from_array(np.zeros(3)))
    with pytest.raises(ValueError, match=r"keys must have shape \(5,\)"):
        list(records_from_array(x, keys=[1, 2]))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        list(records_from_array(x, batch_size=0))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_records_from_array_keeps_a_float_dtype(dtype: str) -> None:
    x = (np.arange(6).reshape(3, 2) / 4).astype(dtype)
    (batch,) = records_from_array(x)
    assert batch.values.dtype == np.dtype(dtype) and batch.values.base is x  # no copy
    single = next(records_from_array(x, columnar=False))
    assert single.values.dtype == np.dtype(dtype)


def test_records_from_array_feeds_integers_as_float64_or_the_dtype_asked_for() -> None:
    big = np.array([[16777217, 1], [2, 3]], dtype=np.int64)
    (batch,) = records_from_array(big)
    assert batch.values.dtype == np.float64 and batch.values.tolist() == [[16777217, 1], [2, 3]]
    (batch,) = records_from_array(np.array([[True, False]]), dtype="float16")
    assert batch.values.dtype == np.float16 and batch.values.tolist() == [[1.0, 0.0]]
    (batch,) = records_from_array(np.array([[0.1, 2.0]]), dtype="float32")
    assert batch.values.dtype == np.float32  # a fraction rounding is no loss of a value


def test_records_from_array_refuses_a_cast_that_loses_a_value() -> None:
    big = np.array([[1, 2], [16777217, 3], [5, 1e39]])
    with pytest.raises(ValueError, match=r"row 1, column 0: 16777217 is not exact in float32"):
        list(records_from_array(big, dtype="float32"))
    with pytest.raises(ValueError, match=r"row 1, column 0: .*overflows float16.*2 row\(s\)"):
        list(records_from_array(big, dtype="float16"))
    with pytest.raises(ValueError, match="dtype must be one of float16, float32, float64"):
        list(records_from_array(big, dtype="bfloat16"))
    with pytest.raises(ValueError, match="numeric values"):
        list(records_from_array(np.array([["a"]])))


def test_relaxed_gc_restores_the_collector_even_when_runs_overlap() -> None:
    import gc

    from pydotcompute.pipeline import relaxed_gc

    before = gc.get_threshold()
    outer = relaxed_gc(1234)
    inner = relaxed_gc(99)
    outer.__enter__()
    assert gc.get_threshold()[0] == 1234 and gc.get_freeze_count() > 0
    inner.__enter__()
    assert gc.get_threshold()[0] == 1234  # the first one in sets it
    outer.__exit__(None, None, None)
    assert gc.get_threshold()[0] == 1234  # still one relaxed run going
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(ValueError, match="at least 1"), relaxed_gc(0):
        pass
