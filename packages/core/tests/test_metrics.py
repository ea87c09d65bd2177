"""Issue 13, metrics while it runs (Python API): a run opened with ``metrics_port``
serves Prometheus metrics of every stage and worker, read from the run's telemetry when
scraped, so that a scrape says what the report says; a port in use, a bad port and a
missing extra are clear errors before anything runs."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
from pipeline_helpers import make_plugins
from prometheus_client.parser import text_string_to_metric_families
from pydotcompute import Pipeline, RestartPolicy, records_from_array
from pydotcompute.errors import InvalidArgumentError, MetricsEndpointError, PipelineStateError
from pydotcompute.pipeline import (
    WAIT_BUCKETS_S,
    MetricsServer,
    PipelineRun,
    RunMetrics,
    WaitHistogram,
)
from pydotcompute.plugins import PluginManager

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

#: Every per-stage counter the endpoint serves, and the StageTelemetry field it is.
STAGE_COUNTERS = {
    "records_in": "records_in",
    "records_out": "records_out",
    "records_failed": "records_failed",
    "records_rejected": "records_rejected",
    "messages_processed": "messages_processed",
    "messages_sent": "messages_sent",
    "messages_dropped": "messages_dropped",
    "ring_records_dropped": "ring_records_dropped",
    "messages_rejected": "messages_rejected",
    "messages_expired": "messages_expired",
    "messages_dead_lettered": "messages_dead_lettered",
    "restarts": "restarts",
}
KERNEL_COUNTERS = (
    "messages_received",
    "messages_processed",
    "messages_sent",
    "messages_dropped",
    "messages_rejected",
    "messages_expired",
    "messages_dead_lettered",
    "output_dropped",
    "output_rejected",
    "errors",
    "restarts",
    "stalls",
)


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


def scrape(url: str) -> Samples:
    """Every sample the endpoint serves, by name and labels (blocking: call it in a
    thread, as Prometheus would from outside, while the run's loop goes on)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples["pydotcompute_" + name, tuple(sorted(labels.items()))]


def rows(n: int, width: int = 4) -> np.ndarray[Any, Any]:
    return np.arange(n * width, dtype=np.float32).reshape(n, width)


def assert_matches(samples: Samples, run: Any, pipeline: str) -> None:
    """Every stage and kernel figure served equals the run's own telemetry now."""
    stages = run.telemetry()
    for stage, t in stages.items():
        labels = {"pipeline": pipeline, "stage": stage}
        for name, field in STAGE_COUNTERS.items():
            assert value(samples, f"stage_{name}_total", **labels) == getattr(t, field), name
        assert value(samples, "stage_workers", **labels) == t.workers
        assert value(samples, "stage_input_queue_depth", **labels) == t.input_queue_depth
        rate = value(samples, "stage_records_per_second", **labels)
        if run.outcome is None:  # the same records over a run that has gone on since
            assert rate >= t.records_per_s
        else:  # over: the run's wall time is fixed
            assert rate == pytest.approx(t.records_per_s)
        assert value(samples, "stage_state", **labels, state=t.state) == 1.0
    for group in run.groups:
        for kid in run.kernel_ids_of(group[0]):
            k = run.runtime.get_telemetry(kid)
            labels = {"pipeline": pipeline, "stage": group[0], "kernel": kid}
            for name in KERNEL_COUNTERS:
                assert value(samples, f"kernel_{name}_total", **labels) == getattr(k, name), name
            assert value(samples, "kernel_input_queue_depth", **labels) == k.input_queue_depth
            # Every message the worker took has its wait in the histogram or is counted
            # as unsampled.
            waits = value(samples, "kernel_queue_wait_seconds_count", **labels)
            unsampled = value(samples, "kernel_queue_wait_unsampled_total", **labels)
            assert waits + unsampled == k.messages_processed + k.messages_dead_lettered
            assert value(samples, "kernel_queue_wait_seconds_bucket", **labels, le="+Inf") == waits
            records_in = value(samples, "kernel_records_in_total", **labels)
            assert records_in == k.counts.get("records_in", 0)


async def test_a_scrape_during_the_run_and_after_it_says_what_the_run_reports(
    pm: PluginManager,
) -> None:
    pipeline = (
        Pipeline("metered")
        .add_stage("a", "scale")
        .add_stage("b", "scale", workers=2, params={"factor": 3.0})
    )
    first, rest = rows(100), rows(900)
    async with pipeline.open(plugins=pm, metrics_port=0) as run:
        url = run.metrics_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        results = run.results()
        await run.send_many(list(records_from_array(first, columnar=True, batch_size=100)))
        got = await anext(results)  # the first batch went all the way through
        assert len(got) == 100
        during = await asyncio.to_thread(scrape, url)
        assert value(during, "run_state", pipeline="metered", state="running") == 1.0
        assert value(during, "run_records_fed_total", pipeline="metered") == 100
        for stage in ("a", "b"):
            labels = {"pipeline": "metered", "stage": stage}
            assert value(during, "stage_records_in_total", **labels) == 100
            assert value(during, "stage_state", **labels, state="active") == 1.0
        assert_matches(during, run, "metered")

        await run.send_many(list(records_from_array(rest, columnar=True, batch_size=100)))
        await run.end_input()
        got_rest = [r async for r in results]
        assert sum(len(r) for r in got_rest) == 900
        after = await asyncio.to_thread(scrape, url)
        assert value(after, "run_state", pipeline="metered", state="finished") == 1.0
        assert value(after, "run_state", pipeline="metered", state="running") == 0.0
        assert value(after, "stage_records_in_total", pipeline="metered", stage="b") == 1000
        assert value(after, "stage_state", pipeline="metered", stage="b", state="finished") == 1
        # Two workers of b, each with its own series; their records add up to the stage's.
        b_workers = run.kernel_ids_of("b")
        assert len(b_workers) == 2
        assert (
            sum(
                value(after, "kernel_records_in_total", pipeline="metered", stage="b", kernel=k)
                for k in b_workers
            )
            == 1000
        )
        assert_matches(after, run, "metered")
    # Closed: the port is free again, nothing answers there.
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(scrape, url)


async def test_restarts_dead_letters_and_failed_records_are_served(pm: PluginManager) -> None:
    policy = RestartPolicy.on_failure(max_restarts=3, backoff=0.0)
    pipeline = (
        Pipeline("crashy")
        .add_stage("a", "scale", params={"poison": 5.0})
        .add_stage("b", "flaky", restart=policy, params={"crashes": 2})
        .add_stage("c", "scale")
    )
    inputs = list(records_from_array(rows(40, 3), columnar=False))
    async with pipeline.open(plugins=pm, metrics_port=0) as run:
        assert run.metrics_url is not None
        results = [r async for r in run.process(inputs)]
        samples = await asyncio.to_thread(scrape, run.metrics_url)
        assert_matches(samples, run, "crashy")
    assert len(results) == 40 - 2  # two held by the crashing worker, dead-lettered
    b = {"pipeline": "crashy", "stage": "b"}
    assert value(samples, "stage_restarts_total", **b) == 2
    assert value(samples, "stage_messages_dead_lettered_total", **b) == 2
    assert value(samples, "kernel_errors_total", **b, kernel="b") == 2
    # Record 1 holds the value 5.0: stage a turns its batch into StageErrors.
    assert value(samples, "stage_records_failed_total", pipeline="crashy", stage="a") >= 1


async def test_drops_and_rejections_are_served(pm: PluginManager) -> None:
    pipeline = (
        Pipeline("lossy")
        .add_stage("dropping", "scale", queue_size=4, backpressure="drop_oldest")
        .add_stage("refusing", "scale", inputs=[], queue_size=4, backpressure="reject")
    )
    inputs = list(records_from_array(rows(64), columnar=False))
    async with pipeline.open(plugins=pm, metrics_port=0) as run:
        assert run.metrics_url is not None
        results = [r async for r in run.process(inputs)]
        samples = await asyncio.to_thread(scrape, run.metrics_url)
        assert_matches(samples, run, "lossy")
        rejected_at_input = run.records_rejected_at_input
    labels = {"pipeline": "lossy"}
    dropped = value(samples, "stage_messages_dropped_total", **labels, stage="dropping")
    assert dropped > 0  # 64 records go into a queue of 4 in one call
    assert rejected_at_input > 0
    assert value(samples, "run_records_rejected_at_input_total", **labels) == rejected_at_input
    assert len(results) == 2 * 64 - dropped - rejected_at_input


async def test_a_port_in_use_fails_the_start_before_any_worker_runs(pm: PluginManager) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = Pipeline("p").add_stage("a", "scale").open(plugins=pm, metrics_port=port)
        with pytest.raises(
            MetricsEndpointError,
            match=rf"cannot serve metrics on 127\.0\.0\.1:{port}: the port is already in use",
        ):
            async with run:
                pytest.fail("the run started")
    with pytest.raises(PipelineStateError):  # no runtime was made, nothing launched
        _ = run.runtime


def test_metrics_on_the_ray_engine_are_refused_not_ignored(pm: PluginManager) -> None:
    pipeline = Pipeline("p", engine="ray").add_stage("a", "scale")
    with pytest.raises(InvalidArgumentError, match="metrics_port is the local engine's"):
        pipeline.open(plugins=pm, metrics_port=0)


@pytest.mark.parametrize("port", [-1, 65536, "9100", 1.5])
def test_a_bad_port_is_refused(pm: PluginManager, port: Any) -> None:
    run = Pipeline("p").add_stage("a", "scale").open(plugins=pm, metrics_port=port)
    with pytest.raises(InvalidArgumentError, match="metrics port must be an int from 0 to 65535"):
        asyncio.run(run.start())


def test_an_address_that_is_not_this_machines_is_refused(pm: PluginManager) -> None:
    run = (
        Pipeline("p")
        .add_stage("a", "scale")
        .open(
            plugins=pm,
            metrics_port=0,
            metrics_address="192.0.2.1",  # TEST-NET-1: not ours
        )
    )
    with pytest.raises(MetricsEndpointError, match=r"192\.0\.2\.1:0: not an address of this"):
        asyncio.run(run.start())


def test_without_prometheus_client_the_error_names_the_extra(
    pm: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    run = Pipeline("p").add_stage("a", "scale").open(plugins=pm, metrics_port=0)
    with pytest.raises(MetricsEndpointError, match=r"pip install 'pydotcompute\[metrics\]'"):
        asyncio.run(run.start())


async def test_a_run_serves_on_an_endpoint_bound_beforehand_and_closes_it(
    pm: PluginManager,
) -> None:
    server = MetricsServer(0)
    before = await asyncio.to_thread(scrape, server.url)  # the process's own metrics only
    assert "process_cpu_seconds_total" in {name for name, _ in before}
    assert not any(name.startswith("pydotcompute_") for name, _ in before)
    pipeline = Pipeline("bound").add_stage("a", "scale")
    run = PipelineRun(pipeline.validate(pm), metrics_server=server)
    async with run:
        assert run.metrics_url == server.url
        results = [r async for r in run.process(records_from_array(rows(10), columnar=True))]
        samples = await asyncio.to_thread(scrape, server.url)
        assert_matches(samples, run, "bound")
    assert sum(len(r) for r in results) == 10
    with pytest.raises(urllib.error.URLError):  # closed with the run
        await asyncio.to_thread(scrape, server.url)


async def test_without_metrics_a_run_serves_nothing(pm: PluginManager) -> None:
    async with Pipeline("p").add_stage("a", "scale").open(plugins=pm) as run:
        assert run.metrics_url is None


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_scrape_while_the_loop_is_held_gets_the_last_snapshot(pm: PluginManager) -> None:
    async with Pipeline("p").add_stage("a", "scale").open(plugins=pm) as run:
        metrics = RunMetrics(run)
        metrics.start()
        last = metrics.snapshot()
        served: list[Any] = []
        scraper = threading.Thread(
            target=lambda: served.append(metrics.snapshot_threadsafe(timeout=0.1))
        )
        scraper.start()
        hold_the_loop(0.5)  # as a stage might: the snapshot cannot be taken on it
        scraper.join()
        assert served == [last]
        # Once the loop is free again, a scrape gets a fresh one.
        fresh = await asyncio.to_thread(metrics.snapshot_threadsafe)
        assert fresh is not last and fresh.taken_at > last.taken_at
        await metrics.stop()
        assert metrics.snapshot_threadsafe() is metrics.snapshot()  # the last one, kept


def test_the_wait_histogram_folds_only_new_samples_and_counts_those_it_missed() -> None:
    histogram = WaitHistogram()
    samples = [2e-6, 3e-4, 0.2, 20.0]  # below the first bound, mid, high, above the last
    histogram.fold(4, samples)
    buckets = dict(histogram.buckets())
    assert buckets[WAIT_BUCKETS_S[0]] == 1
    assert buckets[5e-4] == 2
    assert buckets[0.25] == 3
    assert buckets[WAIT_BUCKETS_S[-1]] == 3
    assert buckets[float("inf")] == 4
    assert histogram.sum == pytest.approx(sum(samples))
    histogram.fold(4, samples)  # nothing new taken: nothing folded twice
    assert histogram.count == 4
    # Three more taken, but the queue keeps only the last two samples: one is missed.
    histogram.fold(7, [0.2, 20.0, 1e-3, 1e-3][-2:])
    assert (histogram.count, histogram.unsampled) == (6, 1)
    assert dict(histogram.buckets())[1e-3] == 4
