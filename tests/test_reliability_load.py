"""Load (issue 5): a million messages through three stages with queues of 8."""

from __future__ import annotations

import asyncio

import pytest
from load_pipeline import STAGES, run_load
from pydotcompute import BackpressureStrategy

MESSAGES = 1_000_000


def test_block_delivers_every_message_exactly_once_in_order() -> None:
    result = asyncio.run(run_load(MESSAGES, BackpressureStrategy.BLOCK))
    assert result.delivered == list(range(MESSAGES))
    assert result.in_order and result.delivered_count == MESSAGES
    assert result.host_rejected == 0
    for stage in STAGES:
        t = result.telemetry[stage]
        assert t.books_balance
        assert (t.messages_received, t.messages_processed, t.messages_dropped) == (
            MESSAGES,
            MESSAGES,
            0,
        )
    assert result.report.clean


@pytest.mark.parametrize(
    "strategy", [BackpressureStrategy.DROP_OLDEST, BackpressureStrategy.REJECT]
)
def test_lossy_strategies_keep_order_and_balance_the_books(strategy: BackpressureStrategy) -> None:
    result = asyncio.run(run_load(MESSAGES, strategy))
    delivered = result.delivered
    assert delivered == sorted(set(delivered))  # each at most once, in order
    assert result.in_order and result.delivered_count == len(delivered)
    lost = sum(
        result.telemetry[s].messages_dropped + result.telemetry[s].messages_rejected for s in STAGES
    )
    assert len(delivered) + lost == MESSAGES  # every message delivered or counted
    assert result.host_rejected == result.telemetry["a"].messages_rejected
    for stage in STAGES:
        assert result.telemetry[stage].books_balance
    assert result.report.clean
