"""Batch-first pipeline stages for pydotcompute, registered as a plugin.

Installing this distribution makes the stages ``preprocess``, ``compute``,
``aggregator`` and ``distributor`` available to pipelines by name. Each takes what is
queued with ``receive_batch``, computes on the whole batch through its backend, and
accepts both per-message records and columnar :class:`pydotcompute.RecordBatch`\\ es.
"""

from __future__ import annotations

from ._aggregator import AGGREGATOR, Aggregator
from ._compute import COMPUTE, STATISTICS, Compute
from ._distributor import DISTRIBUTOR, Distributor
from ._messages import ComputeResult, PreprocessedData
from ._preprocess import PREPROCESS, Preprocess

__version__ = "0.1.0"

__all__ = [
    "AGGREGATOR",
    "COMPUTE",
    "DISTRIBUTOR",
    "PREPROCESS",
    "STATISTICS",
    "Aggregator",
    "Compute",
    "ComputeResult",
    "Distributor",
    "Preprocess",
    "PreprocessedData",
]
