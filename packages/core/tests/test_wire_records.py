"""The wire forms of the messages that travel between pipeline stages: each survives
encode/decode exactly (numpy buffers through msgpack, never pickle), device arrays come
back as numpy, and a malformed buffer is refused naming the field."""

from __future__ import annotations

import functools
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydotcompute import MessageValidationError
from pydotcompute.backend import to_host
from pydotcompute.dataflow import RingRows
from pydotcompute.runtime import decode_message, encode_message, wire_round_trip
from pydotcompute.stage import (
    EndOfStream,
    Record,
    RecordBatch,
    StageError,
    new_record_ids,
    record_ids_for_rows,
)

DTYPES = ["float16", "float32", "float64", "int64"]


@st.composite
def record_batches(draw: st.DrawFn) -> RecordBatch:
    n = draw(st.integers(0, 12))
    width = draw(st.integers(0, 5))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8)
    else:
        elements = st.integers(-(2**63), 2**63 - 1)
    values = np.array(draw(st.lists(elements, min_size=n * width, max_size=n * width)), dtype)
    ints = st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n).map(
        lambda xs: np.array(xs, dtype=np.int64)
    )
    keys = draw(st.none() | ints)
    counts = draw(st.none() | ints)
    named = draw(st.booleans())
    return RecordBatch(
        values=values.reshape(n, width),
        record_ids=new_record_ids(n),
        keys=keys,
        columns=tuple(f"c{i}" for i in range(width)) if named else (),
        field=draw(st.sampled_from(["values", "normalized"])),
        counts=counts,
        correlation_id=draw(st.none() | st.uuids()),
    )


def assert_same_batch(back: Any, batch: RecordBatch) -> None:
    assert type(back) is RecordBatch
    assert back.values.dtype == batch.values.dtype and back.values.shape == batch.values.shape
    assert back.values.tobytes() == batch.values.tobytes()  # bit for bit, NaNs included
    np.testing.assert_array_equal(back.record_ids, batch.record_ids)
    assert back.record_ids.dtype == np.uint64
    for name in ("keys", "counts"):
        mine, theirs = getattr(back, name), getattr(batch, name)
        assert (mine is None) == (theirs is None), name
        if mine is not None:
            assert mine.dtype == np.int64
            np.testing.assert_array_equal(mine, theirs)
    assert (back.columns, back.field) == (batch.columns, batch.field)
    assert (back.message_id, back.correlation_id) == (batch.message_id, batch.correlation_id)


@settings(max_examples=150, deadline=None)
@given(record_batches())
def test_record_batches_round_trip_exactly(batch: RecordBatch) -> None:
    assert_same_batch(wire_round_trip(batch), batch)
    assert_same_batch(RecordBatch.from_bytes(batch.to_bytes()), batch)


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_empty_batch_keeps_its_width_and_dtype(dtype: str) -> None:
    empty = RecordBatch(values=np.zeros((0, 4), dtype), record_ids=new_record_ids(0))
    back = wire_round_trip(empty)
    assert back.values.shape == (0, 4) and back.values.dtype == np.dtype(dtype)
    assert back.keys is None and back.counts is None and len(back) == 0


def test_per_message_records_errors_and_markers_round_trip() -> None:
    row = np.arange(5, dtype=np.float32)
    for record in (Record(values=row, key=3), Record(values=[1.5, 2.0]), Record(values=row[::2])):
        back = wire_round_trip(record)
        np.testing.assert_array_equal(back.values, record.values)
        assert (back.key, back.message_id) == (record.key, record.message_id)
    assert wire_round_trip(Record(values=row)).values.dtype == np.float32

    ids = record_ids_for_rows(10, 3, 5)
    error = StageError(stage="s", kernel="s_1", error="ValueError: bad", record_ids=ids)
    back = wire_round_trip(error)
    assert (back.stage, back.kernel, back.error) == ("s", "s_1", "ValueError: bad")
    np.testing.assert_array_equal(back.record_ids, ids)

    marker = EndOfStream(source="compute_1")
    assert wire_round_trip(marker) == marker


def test_ring_rows_round_trip_with_their_ring_name() -> None:
    rows = RingRows(ring="a_0->b_1", start=40, count=2, record_ids=new_record_ids(2), keys=None)
    back = wire_round_trip(rows)
    assert (back.ring, back.start, back.count, back.keys) == ("a_0->b_1", 40, 2, None)
    np.testing.assert_array_equal(back.record_ids, rows.record_ids)


class DeviceArray:
    """Stands for a backend's device tensor: not numpy, but has ``__dlpack__``."""

    def __init__(self, host: np.ndarray) -> None:
        self.host = host
        self.shape = host.shape

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the wire must go through the backend, not dlpack")


class DeviceBackend:
    name = "device"

    def to_numpy(self, x: DeviceArray) -> np.ndarray:
        return x.host


def test_device_arrays_come_back_as_numpy_through_the_backend() -> None:
    host = np.arange(6, dtype=np.float32).reshape(3, 2)
    batch = RecordBatch(values=DeviceArray(host), record_ids=new_record_ids(3))
    back = wire_round_trip(batch, to_numpy=functools.partial(to_host, DeviceBackend()))
    assert type(back.values) is np.ndarray
    np.testing.assert_array_equal(back.values, host)
    with pytest.raises(MessageValidationError, match=r"RecordBatch\.values cannot be sent"):
        encode_message(batch)  # without to_numpy a device array has no wire form


def _tampered(batch: RecordBatch, field: str, ext: msgpack.ExtType) -> bytes:
    envelope = msgpack.unpackb(
        batch.to_bytes(), raw=False, strict_map_key=False, ext_hook=msgpack.ExtType
    )
    envelope["f"][field] = ext
    return msgpack.packb(envelope, use_bin_type=True)


def test_a_malformed_buffer_is_refused_naming_the_field() -> None:
    batch = RecordBatch(values=np.ones((2, 2), np.float32), record_ids=new_record_ids(2))
    short = msgpack.ExtType(2, msgpack.packb([["<f4", [2, 2]], b"\x00" * 3]))
    with pytest.raises(MessageValidationError, match=r"RecordBatch\.values: .*needs 16 bytes"):
        decode_message(_tampered(batch, "values", short))
    garbage = msgpack.ExtType(2, b"\xc1")
    with pytest.raises(MessageValidationError, match=r"RecordBatch\.keys: malformed array"):
        decode_message(_tampered(batch, "keys", garbage))
    bad_id = msgpack.ExtType(1, b"short")
    with pytest.raises(MessageValidationError, match=r"RecordBatch\.message_id: a UUID needs"):
        decode_message(_tampered(batch, "message_id", bad_id))
    # Well-formed arrays of the wrong shape: the message type's own check names the field.
    ids = msgpack.ExtType(2, msgpack.packb([["<u8", [2]], b"\x00" * 16]))
    with pytest.raises(MessageValidationError, match=r"RecordBatch\.record_ids must be \(2, 2\)"):
        decode_message(_tampered(batch, "record_ids", ids))
