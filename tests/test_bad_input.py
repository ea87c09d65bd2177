"""The bad input catalogue (issue 5): each bad input gets a clear error naming the
culprit, and nothing that was already accepted is lost."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from pydotcompute import (
    KernelContext,
    MessageTypeError,
    MessageValidationError,
    RingKernelRuntime,
    message,
)
from pydotcompute.runtime import decode_message


@message
@dataclass
class Values:
    values: list[float] = field(default_factory=list)


@message
@dataclass
class Blob:
    data: Any = None


@message
@dataclass
class Unrelated:
    note: str = ""


async def echo(ctx: KernelContext) -> None:
    while not ctx.should_terminate:
        try:
            await ctx.send(await ctx.receive(timeout=0.05))
        except TimeoutError:
            continue


async def run_with_bad_send(bad: Any, expected: type[Exception], match: str) -> list[Any]:
    """Queue two good messages, try the bad one, then make sure both good ones arrive."""
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo, input_type=Values)
        good = [Values(values=[1.0]), Values(values=[2.0])]
        await rt.send("k", good[0])
        with pytest.raises(expected, match=match):
            await rt.send("k", bad)
        await rt.send("k", good[1])
        await rt.activate("k")
        got = [await rt.receive("k", timeout=2) for _ in good]
        assert got == good
        t = rt.get_telemetry("k")
        assert (t.messages_received, t.messages_processed) == (2, 2) and t.books_balance
    return got


async def test_wrong_message_type_names_both_types() -> None:
    await run_with_bad_send(
        Unrelated(), MessageTypeError, "sent a Unrelated to kernel 'k', which takes Values"
    )


@pytest.mark.parametrize("bad", [{"values": [1.0]}, [1.0, 2.0], "text", None, 42])
async def test_non_message_objects_are_refused(bad: Any) -> None:
    await run_with_bad_send(
        bad, MessageTypeError, "not a message: decorate its class with @message"
    )


@pytest.mark.parametrize("priority", [-1, 256])
def test_priority_out_of_range_never_reaches_a_queue(priority: int) -> None:
    with pytest.raises(MessageValidationError, match=r"Values\.priority must be in 0\.\.255"):
        Values(values=[1.0], priority=priority)


async def test_ten_million_floats_travel_through_a_kernel_and_the_wire() -> None:
    big = np.arange(10_000_000, dtype=np.float64)
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo)
        await rt.activate("k")
        await rt.send("k", Blob(data=big))
        back = await rt.receive("k", timeout=10)
    assert back.data is big  # in-process: passed by reference, never copied
    decoded = decode_message(Blob(data=big).to_bytes())
    assert isinstance(decoded, Blob)
    np.testing.assert_array_equal(decoded.data, big)


def test_ten_million_float_list_round_trips_on_the_wire() -> None:
    values = [float(i) for i in range(10_000_000)]
    decoded = decode_message(Values(values=values).to_bytes())
    assert isinstance(decoded, Values) and decoded.values == values


async def test_nan_and_infinities_pass_through_the_runtime_untouched() -> None:
    special = Values(values=[float("nan"), float("inf"), -float("inf"), 1.0])
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo)
        await rt.activate("k")
        await rt.send("k", special)
        back = await rt.receive("k", timeout=2)
    assert back is special
    decoded = decode_message(special.to_bytes())
    assert isinstance(decoded, Values)
    assert np.isnan(decoded.values[0]) and decoded.values[1:] == [float("inf"), -float("inf"), 1.0]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x93\x01\x02\x03", "not a message envelope"),  # a list, not a map
        (b"\xff" * 16, "malformed wire bytes"),
        (b"\xdb\xff\xff\xff\xff", "malformed wire bytes"),  # claims a 4 GiB string
    ],
)
def test_malformed_wire_bytes_are_refused_clearly(data: bytes, match: str) -> None:
    with pytest.raises(MessageValidationError, match=match):
        decode_message(data)


async def test_kernel_crashing_on_a_bad_record_keeps_its_queue_for_inspection() -> None:
    """Empty and ragged value lists crash a naive kernel; the crash is loud (FAILED,
    logged, KernelFailedError) and the messages behind the bad one stay accounted for."""

    async def naive_normalize(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            lo, hi = min(msg.values), max(msg.values)  # empty list: ValueError
            await ctx.send(Values(values=[(v - lo) / (hi - lo) for v in msg.values]))

    runtime = RingKernelRuntime(drain_timeout=0.2)
    async with runtime:
        await runtime.launch("n", naive_normalize)
        for values in ([0.0, 2.0], [], [1.0, 3.0]):
            await runtime.send("n", Values(values=values))
        await runtime.activate("n")
        assert (await runtime.receive("n", timeout=2)).values == [0.0, 1.0]
        while runtime.kernel_error("n") is None:
            await asyncio.sleep(0.001)
        assert isinstance(runtime.kernel_error("n"), ValueError)
    report = runtime.shutdown_report
    assert report is not None
    assert [d.message.values for d in runtime.dead_letters()] == [[]]
    assert [m.values for m in report.kernels["n"].unprocessed] == [[1.0, 3.0]]
