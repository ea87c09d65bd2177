"""preprocess: min-max normalization against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from pydotcompute import Pipeline, records_from_array
from pydotcompute.stage import Record, RecordBatch, StageError, record_ids_for_rows
from pydotcompute_stages import PreprocessedData
from stages_helpers import EDGE_ROWS, by_id, by_row, ref_minmax, run


def pipeline(**settings: object) -> Pipeline:
    return Pipeline().add_stage("preprocess", **settings)  # type: ignore[arg-type]


def random_rows(n: int = 300, width: int = 17) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, width)).astype(np.float32)
    x[::7] = 3.0  # constant rows
    x[::11, ::3] = np.nan
    return x


@pytest.mark.parametrize("batch_size", [1, 7, 1024])
async def test_per_message_equals_the_reference(batch_size: int) -> None:
    x = np.concatenate([EDGE_ROWS, random_rows(width=6)])
    inputs = list(records_from_array(x, columnar=False))
    results = await run(pipeline(batch_size=batch_size), inputs)
    assert len(results) == len(x)
    got = by_id(results)
    expected = ref_minmax(x)
    for record, want in zip(inputs, expected, strict=True):
        out = got[record.message_id]
        assert type(out) is PreprocessedData
        assert out.normalized.dtype == np.float32
        np.testing.assert_array_equal(out.normalized, want)


@pytest.mark.parametrize("chunk", [1, 5, 4096])
async def test_columnar_equals_the_reference(chunk: int) -> None:
    x = np.concatenate([EDGE_ROWS, random_rows(width=6)])
    results = await run(pipeline(), records_from_array(x, batch_size=chunk))
    assert all(type(r) is RecordBatch and r.field == "normalized" for r in results)
    np.testing.assert_array_equal(by_row(results, len(x)), ref_minmax(x))


async def test_lists_and_arrays_of_any_float_dtype_are_read() -> None:
    inputs = [
        Record(values=[1, 2, 3]),
        Record(values=np.array([4.0, 8.0, 6.0], dtype=np.float64)),
        Record(values=np.array([1, 1, 2], dtype=np.int64)),
    ]
    got = by_id(await run(pipeline(), inputs))
    np.testing.assert_array_equal(got[inputs[0].message_id].normalized, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(got[inputs[1].message_id].normalized, [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(got[inputs[2].message_id].normalized, [0.0, 0.0, 1.0])


async def test_keys_and_root_ids_are_kept() -> None:
    parent = Record(values=[0.0, 2.0], key=-4)
    forwarded = Record(values=[1.0, 3.0], key=9, correlation_id=parent.message_id)
    got = by_id(await run(pipeline(), [parent, forwarded]))
    assert set(got) == {parent.message_id}  # the forwarded record answers its root
    ids = record_ids_for_rows(0, 2, 5)
    batch = RecordBatch(values=np.ones((2, 3)), record_ids=ids, keys=np.array([3, -1]))
    (out,) = await run(pipeline(), [batch])
    assert out.keys.tolist() == [3, -1] and (out.record_ids == ids).all()
    assert out.correlation_id == batch.message_id


async def test_widths_differ_between_records_and_batches() -> None:
    x4 = random_rows(10, 4)
    x9 = random_rows(10, 9)
    inputs = [*records_from_array(x4, columnar=False), *records_from_array(x9, batch_size=3)]
    results = await run(pipeline(), inputs)
    singles = [r for r in results if type(r) is PreprocessedData]
    batches = [r for r in results if type(r) is RecordBatch]
    assert len(singles) == 10 and sum(len(b) for b in batches) == 10
    np.testing.assert_array_equal(by_row(batches, 10), ref_minmax(x9))


async def test_width_zero_records_come_back_empty() -> None:
    inputs = [Record(values=[]), Record(values=[])]
    results = await run(pipeline(), inputs)
    assert [r.normalized.shape for r in results] == [(0,), (0,)]


async def test_a_bad_record_is_an_error_and_the_good_ones_are_exact() -> None:
    good = [Record(values=[1.0, 3.0, 2.0]), Record(values=[5.0, 5.0, 9.0])]
    bad = [Record(values="abc"), Record(values=[[1.0, 2.0], [3.0, 4.0]]), Record(values=None)]
    results = await run(pipeline(), [good[0], *bad, good[1]])
    errors = [r for r in results if type(r) is StageError]
    assert {e.correlation_id for e in errors} == {b.message_id for b in bad}
    assert all(e.stage == "preprocess" for e in errors)
    assert any("1-D" in e.error for e in errors)
    outs = {r.correlation_id: r for r in results if type(r) is PreprocessedData}
    np.testing.assert_array_equal(outs[good[0].message_id].normalized, [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(outs[good[1].message_id].normalized, [0.0, 0.0, 1.0])


async def test_a_guide_style_raw_data_message_is_accepted() -> None:
    from dataclasses import dataclass, field
    from uuid import UUID, uuid4

    from pydotcompute import message

    @message
    @dataclass
    class RawData:
        values: list[float]
        message_id: UUID = field(default_factory=uuid4)
        priority: int = 128
        correlation_id: UUID | None = None

    raw = RawData(values=[1, 2, 3, 4, 5])
    (out,) = await run(pipeline(), [raw])
    assert out.correlation_id == raw.message_id
    np.testing.assert_array_equal(out.normalized, [0.0, 0.25, 0.5, 0.75, 1.0])
