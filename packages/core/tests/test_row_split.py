"""The ``threads`` setting (issue 12, item 5): a stage's row-wise work on a large host
batch is cut into row slices worked on at once in threads and joined in row order; the
results are those of the work done whole, and a slice's failure is the batch's."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import numpy as np
import pytest
from pydotcompute import Pipeline, RecordBatch, StageError, records_from_array
from pydotcompute.dataflow import MIN_SLICE_ROWS, usable_cores
from pydotcompute.errors import ParameterValueError
from pydotcompute.plugins import PluginManager, create_plugin_manager
from pydotcompute.stage import (
    BatchStage,
    Emitter,
    Param,
    StageDefinition,
    hookimpl,
    sort_batch,
)

LOOP = "loop"


class Slices(BatchStage):
    """Squares values through ``offload(by_rows=...)``, noting each call's thread and rows.

    Params: ``by_rows`` (passed on), ``fail_from`` (a slice starting at or after this row
    raises), ``bad_rows`` (the work returns one row too few)."""

    calls: ClassVar[list[tuple[str, int, int]]] = []  # (thread, first value, rows)

    async def process(self, batch: list[Any], out: Emitter) -> None:
        self.loop_thread = threading.get_ident()
        for columnar in sort_batch(batch).batches:
            by_rows = self.setup.params["by_rows"]
            try:
                squared = await self.offload(self._work, columnar.values, by_rows=by_rows)
            except Exception as exc:
                await out.send_error([columnar], exc)
                continue
            await out.send(RecordBatch(values=squared, record_ids=columnar.record_ids))

    def _work(self, values: Any) -> Any:
        thread = LOOP if threading.get_ident() == self.loop_thread else "other"
        Slices.calls.append((thread, int(values[0, 0]), len(values)))
        params = self.setup.params
        if params["fail_from"] is not None and values[0, 0] >= params["fail_from"]:
            time.sleep(0.01)  # fails last: the error still comes out
            raise ValueError(f"no square for rows from {int(values[0, 0])}")
        squared = values * values
        return squared[:-1] if params["bad_rows"] else squared


class SliceStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, Any]:
        params = {
            "by_rows": Param(bool, default=True),
            "fail_from": Param(int, default=None, nullable=True),
            "bad_rows": Param(bool, default=False),
        }
        return {"slices": StageDefinition("slices", Slices.factory, "squares", params=params)}


@pytest.fixture
def plugins() -> PluginManager:
    manager = create_plugin_manager(autoload=False)
    manager.register_plugin(SliceStages(), distribution="slices", entry_point="slices")
    Slices.calls.clear()
    return manager


def rows(n: int) -> np.ndarray[Any, Any]:
    """``n`` rows of 4 values, row ``i`` all ``i``: a slice's first value is its first row."""
    return np.repeat(np.arange(n, dtype=np.float64)[:, None], 4, axis=1)


async def run(plugins: PluginManager, x: np.ndarray[Any, Any], **settings: Any) -> list[Any]:
    params = settings.pop("params", {})
    pipeline = Pipeline().add_stage("s", "slices", params=params, **settings)
    feed = records_from_array(x, batch_size=len(x))
    return [r async for r in pipeline.run(feed, plugins=plugins)]


async def test_a_large_batch_is_cut_into_row_slices_and_joined_in_order(
    plugins: PluginManager,
) -> None:
    x = rows(4 * MIN_SLICE_ROWS + 3)
    (result,) = await run(plugins, x, threads=3)
    assert np.array_equal(result.values, x * x)
    calls = sorted(Slices.calls, key=lambda call: call[1])
    assert [(first, n) for _, first, n in calls] == [(0, 1366), (1366, 1366), (2732, 1367)]
    # The loop's thread works on the first slice itself; the others go to threads.
    assert [thread for thread, _, _ in calls] == [LOOP, "other", "other"]


@pytest.mark.parametrize(
    ("n", "settings", "slices"),
    [
        (2 * MIN_SLICE_ROWS - 1, {"threads": 8}, 1),  # too short for two slices
        (2 * MIN_SLICE_ROWS, {"threads": 8}, 2),  # slices of the fewest rows
        (8 * MIN_SLICE_ROWS, {"threads": 1}, 1),  # asked for one thread
        (8 * MIN_SLICE_ROWS, {"threads": 2, "params": {"by_rows": False}}, 1),  # not row-wise
    ],
)
async def test_a_batch_is_cut_only_when_worth_it_and_allowed(
    plugins: PluginManager, n: int, settings: dict[str, Any], slices: int
) -> None:
    x = rows(n)
    (result,) = await run(plugins, x, **settings)
    assert np.array_equal(result.values, x * x)
    assert len(Slices.calls) == slices


async def test_offloaded_work_sends_every_slice_to_a_thread(plugins: PluginManager) -> None:
    x = rows(2 * MIN_SLICE_ROWS)
    (result,) = await run(plugins, x, threads=2, offload="thread")
    assert np.array_equal(result.values, x * x)
    assert sorted(thread for thread, _, _ in Slices.calls) == ["other", "other"]


@pytest.mark.parametrize("offload", ["none", "thread"])
async def test_a_failing_slice_fails_the_batch_once_every_slice_is_done(
    plugins: PluginManager, offload: str
) -> None:
    x = rows(3 * MIN_SLICE_ROWS)
    params = {"fail_from": MIN_SLICE_ROWS}
    (error,) = await run(plugins, x, threads=3, offload=offload, params=params)
    assert type(error) is StageError and error.stage == "s"
    # The first failing slice in row order names itself; every slice ran to its end.
    assert f"no square for rows from {MIN_SLICE_ROWS}" in error.error
    assert len(Slices.calls) == 3


async def test_work_that_does_not_return_a_row_per_row_names_the_stage(
    plugins: PluginManager,
) -> None:
    x = rows(2 * MIN_SLICE_ROWS)
    (error,) = await run(plugins, x, threads=2, params={"bad_rows": True})
    assert type(error) is StageError
    assert "stage 's': work split by rows must return a numpy array with one row per" in (
        error.error
    )
    assert "rows 0 to 1023 gave (1023, 4)" in error.error


async def test_auto_threads_are_the_cores_the_process_may_use(plugins: PluginManager) -> None:
    x = rows(64 * MIN_SLICE_ROWS)
    (result,) = await run(plugins, x)  # threads: auto, the default
    assert np.array_equal(result.values, x * x)
    assert len(Slices.calls) == min(64, usable_cores())


def test_threads_must_be_a_positive_integer_or_auto(plugins: PluginManager) -> None:
    with pytest.raises(ParameterValueError, match="threads must be a positive integer or 'auto'"):
        Pipeline().add_stage("s", "slices", threads=-2).validate(plugins)
