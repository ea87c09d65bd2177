"""A run's Prometheus endpoint: ``prometheus-client``'s HTTP server, with one custom
collector that turns a :class:`~._metrics.MetricsSnapshot` into metric families when
Prometheus scrapes (nothing is counted twice, nothing is done between scrapes).

``prometheus-client`` is the ``metrics`` extra: imported only when a run asks for
metrics, and its absence is an error that names the extra.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..errors import InvalidArgumentError, MetricsEndpointError
from ._metrics import MetricsSnapshot

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["DEFAULT_METRICS_ADDRESS", "MetricsServer", "metric_families", "require_metrics"]

#: Where the endpoint listens unless told otherwise: this machine only.
DEFAULT_METRICS_ADDRESS: Final = "127.0.0.1"
_PREFIX: Final = "pydotcompute_"
_INSTALL: Final = "pip install 'pydotcompute[metrics]'"
# How often the server's loop looks for close(): what a run's close waits at most.
_POLL_S: Final = 0.02

# (name, help, StageTelemetry field) of the per-stage counters.
_STAGE_COUNTERS: Final = (
    (
        "stage_records_in",
        "Records the stage took in (a RecordBatch counts its rows).",
        "records_in",
    ),
    ("stage_records_out", "Records the stage sent on.", "records_out"),
    ("stage_records_failed", "Records turned into StageError in the stage.", "records_failed"),
    (
        "stage_records_rejected",
        "Records a full reject queue downstream refused.",
        "records_rejected",
    ),
    ("stage_messages_processed", "Messages taken from the input queues.", "messages_processed"),
    ("stage_messages_sent", "Messages sent on.", "messages_sent"),
    (
        "stage_messages_dropped",
        "Messages evicted from full drop_oldest input queues.",
        "messages_dropped",
    ),
    (
        "stage_ring_records_dropped",
        "Records evicted from full drop_oldest device rings into the stage.",
        "ring_records_dropped",
    ),
    (
        "stage_messages_rejected",
        "Messages refused by full reject input queues.",
        "messages_rejected",
    ),
    (
        "stage_messages_expired",
        "Messages whose deadline passed while queued (dead-lettered).",
        "messages_expired",
    ),
    (
        "stage_messages_dead_lettered",
        "Messages a worker took and then failed or stalled on (dead letters).",
        "messages_dead_lettered",
    ),
    ("stage_restarts", "Worker restarts by the stage's restart policy.", "restarts"),
)
_STAGE_GAUGES: Final = (
    ("stage_workers", "Worker kernels of the stage.", "workers"),
    ("stage_input_queue_depth", "Messages waiting in the input queues now.", "input_queue_depth"),
    (
        "stage_output_queue_depth",
        "Messages waiting in the output queues now.",
        "output_queue_depth",
    ),
    (
        "stage_records_per_second",
        "Records taken in per second, averaged over the run so far (the report's "
        "records/s); rate() of stage_records_in_total gives the recent rate.",
        "records_per_s",
    ),
)
# (name, help, KernelTelemetry field) of the per-kernel counters and gauges.
_KERNEL_COUNTERS: Final = (
    (
        "kernel_messages_received",
        "Messages offered to the input queue (accepted or rejected).",
        "messages_received",
    ),
    ("kernel_messages_processed", "Messages the kernel took.", "messages_processed"),
    ("kernel_messages_sent", "Messages the kernel sent on.", "messages_sent"),
    ("kernel_messages_dropped", "Messages evicted from the input queue.", "messages_dropped"),
    ("kernel_messages_rejected", "Messages refused by the input queue.", "messages_rejected"),
    ("kernel_messages_expired", "Messages expired in the input queue.", "messages_expired"),
    (
        "kernel_messages_dead_lettered",
        "Messages taken, then dead-lettered by a failure or a stall.",
        "messages_dead_lettered",
    ),
    ("kernel_output_dropped", "Messages evicted from the output queue.", "output_dropped"),
    ("kernel_output_rejected", "Messages refused by the output queue.", "output_rejected"),
    ("kernel_errors", "Times the kernel's function raised.", "errors"),
    ("kernel_restarts", "Times the kernel was restarted by its policy.", "restarts"),
    ("kernel_stalls", "Times the watchdog found the kernel stalled.", "stalls"),
)
_KERNEL_GAUGES: Final = (
    ("kernel_input_queue_depth", "Messages waiting in the input queue now.", "input_queue_depth"),
    (
        "kernel_output_queue_depth",
        "Messages waiting in the output queue now.",
        "output_queue_depth",
    ),
    (
        "kernel_messages_per_second",
        "Messages processed per second while active, averaged since launch.",
        "throughput",
    ),
)
_KERNEL_RECORDS: Final = {
    "records_in": "Records the worker took in for the stage.",
    "records_out": "Records the worker sent on for the stage.",
    "records_failed": "Records the worker turned into StageError for the stage.",
    "records_rejected": "Records a full reject queue downstream refused the worker.",
}
_STATES: Final = ("starting", "running", "finished", "failed", "stopped")


def require_metrics() -> Any:
    """The ``prometheus_client`` module, or MetricsEndpointError naming the extra."""
    try:
        return importlib.import_module("prometheus_client")
    except ImportError as exc:
        raise MetricsEndpointError(
            f"metrics need prometheus-client, which is not installed: {_INSTALL}"
        ) from exc


def metric_families(snapshot: MetricsSnapshot, age_s: float) -> Iterator[Metric]:
    """Prometheus metric families of ``snapshot`` (taken ``age_s`` seconds ago)."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    pipeline = snapshot.pipeline
    run_state = GaugeMetricFamily(
        _PREFIX + "run_state",
        "1 for the run's state: starting, running, finished (every result came out), "
        "failed (a stage failed) or stopped (closed before finishing).",
        labels=["pipeline", "state"],
    )
    for state in _STATES:
        run_state.add_metric([pipeline, state], 1.0 if state == snapshot.state else 0.0)
    yield run_state
    run_figures: tuple[tuple[Callable[..., Any], str, str, float], ...] = (
        (CounterMetricFamily, "run_records_fed", "Records fed into the run.", snapshot.records_fed),
        (
            CounterMetricFamily,
            "run_records_rejected_at_input",
            "Records a full reject source queue refused.",
            snapshot.records_rejected_at_input,
        ),
        (GaugeMetricFamily, "run_seconds", "The run's wall time so far.", snapshot.seconds),
        (
            GaugeMetricFamily,
            "snapshot_age_seconds",
            "How old the figures served are (above 0: the run's loop was busy or the run "
            "is over, and the last snapshot is served).",
            age_s,
        ),
    )
    for family, name, doc, value in run_figures:
        metric = family(_PREFIX + name, doc, labels=["pipeline"])
        metric.add_metric([pipeline], value)
        yield metric

    stages = snapshot.stages.values()
    for name, doc, field in _STAGE_COUNTERS:
        counter = CounterMetricFamily(_PREFIX + name, doc, labels=["pipeline", "stage"])
        for t in stages:
            counter.add_metric([pipeline, t.stage], getattr(t, field))
        yield counter
    for name, doc, field in _STAGE_GAUGES:
        gauge = GaugeMetricFamily(_PREFIX + name, doc, labels=["pipeline", "stage"])
        for t in stages:
            gauge.add_metric([pipeline, t.stage], getattr(t, field))
        yield gauge
    stage_state = GaugeMetricFamily(
        _PREFIX + "stage_state",
        "1 for the stage's state as the report shows it (active, finished, stopped, "
        "failed, restarting, ...).",
        labels=["pipeline", "stage", "state"],
    )
    for t in stages:
        stage_state.add_metric([pipeline, t.stage, t.state], 1.0)
    yield stage_state

    kernels = snapshot.kernels
    labels = ["pipeline", "stage", "kernel"]
    for name, doc, field in _KERNEL_COUNTERS:
        counter = CounterMetricFamily(_PREFIX + name, doc, labels=labels)
        for kid, k in kernels.items():
            counter.add_metric([pipeline, k.stage, kid], getattr(k.telemetry, field))
        yield counter
    for name, doc, field in _KERNEL_GAUGES:
        gauge = GaugeMetricFamily(_PREFIX + name, doc, labels=labels)
        for kid, k in kernels.items():
            gauge.add_metric([pipeline, k.stage, kid], getattr(k.telemetry, field))
        yield gauge
    for count, doc in _KERNEL_RECORDS.items():
        counter = CounterMetricFamily(
            _PREFIX + "kernel_" + count,
            doc + " A fused worker has one series per stage it runs.",
            labels=labels,
        )
        for kid, k in kernels.items():
            for member, records in k.records.items():
                counter.add_metric([pipeline, member, kid], records[count])
        yield counter
    waits = HistogramMetricFamily(
        _PREFIX + "kernel_queue_wait_seconds",
        "How long messages waited in the worker's input queue.",
        labels=labels,
    )
    unsampled = CounterMetricFamily(
        _PREFIX + "kernel_queue_wait_unsampled",
        "Messages taken whose wait is not in kernel_queue_wait_seconds (more came than "
        "the queue keeps samples of between two folds).",
        labels=labels,
    )
    for kid, k in kernels.items():
        buckets = [(_bound(le), float(n)) for le, n in k.wait_buckets]
        waits.add_metric([pipeline, k.stage, kid], buckets, k.wait_sum_s)
        unsampled.add_metric([pipeline, k.stage, kid], k.wait_unsampled)
    yield waits
    yield unsampled


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


class _RunCollector:
    """Collects a run's metrics at scrape time, in the HTTP server's thread; nothing
    until a run is served (:meth:`MetricsServer.serve`)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.snapshot: Callable[[], MetricsSnapshot] | None = None
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        take = self.snapshot
        if take is None:
            return
        snapshot = take()
        yield from metric_families(snapshot, max(0.0, self._clock() - snapshot.taken_at))


class MetricsServer:
    """A Prometheus endpoint at ``http://ADDRESS:PORT/metrics``, bound and serving when
    made: the process's own metrics at first, a run's once :meth:`serve` is given its
    snapshots (``PipelineRun`` does that with ``metrics_server=``, or makes one itself
    with ``metrics_port=``).

    ``port`` 0 lets the system pick a free port (:attr:`port` says which).
    :meth:`close` stops it and frees the port.

    Raises:
        MetricsEndpointError: prometheus-client is missing, or the address cannot be
            bound (the port is in use, the address is not this machine's).
        InvalidArgumentError: ``port`` is not an int from 0 to 65535.
    """

    def __init__(self, port: int, address: str = DEFAULT_METRICS_ADDRESS) -> None:
        if type(port) is not int or not 0 <= port <= 65535:
            raise InvalidArgumentError(f"metrics port must be an int from 0 to 65535, got {port!r}")
        client = require_metrics()
        from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

        registry: CollectorRegistry = client.CollectorRegistry(auto_describe=False)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        self._collector = _RunCollector(time.monotonic)
        registry.register(cast("Collector", self._collector))
        where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        try:
            self._server = _bind(address, port, client.make_wsgi_app(registry))
        except socket.gaierror as exc:
            raise MetricsEndpointError(
                f"cannot serve metrics on {where}: no such address ({exc.strerror})"
            ) from None
        except OSError as exc:
            reason = (
                "the port is already in use"
                if exc.errno == errno.EADDRINUSE
                else "not an address of this machine"
                if exc.errno == errno.EADDRNOTAVAIL
                else exc.strerror or str(exc)
            )
            raise MetricsEndpointError(f"cannot serve metrics on {where}: {reason}") from None
        self.address = address
        self.port: int = self._server.server_port
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            name=f"pydotcompute-metrics-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def serve(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        """Serve a run's metrics from now on: ``snapshot`` is called in the server's
        thread on each scrape (see ``RunMetrics.snapshot_threadsafe``)."""
        self._collector.snapshot = snapshot

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port (waits for the server's loop, at most
        ``_POLL_S``). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    async def aclose(self) -> None:
        """:meth:`close` without holding up the event loop."""
        await asyncio.to_thread(self.close)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line on stderr per scrape (the run's own output is there)."""


def _bind(address: str, port: int, app: Any) -> WSGIServer:
    """A WSGI server for ``app`` (prometheus-client's exposition), a thread per scrape,
    bound (IPv4 or IPv6, as ``address`` is) but not serving yet. Not the client's
    ``start_http_server``: its loop looks for shutdown every 0.5 s, which every run's
    close would then wait for."""
    family = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    server_class = type("_MetricsServer", (_ThreadingWSGIServer,), {"address_family": family[0][0]})
    return make_server(address, port, app, server_class, handler_class=_QuietHandler)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds up the process's exit
