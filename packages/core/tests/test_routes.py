from __future__ import annotations

import pytest
from core_helpers import Item, Other, echo_kernel, hold_kernel, until
from pydotcompute import (
    KernelNotFoundError,
    KernelStateError,
    MessageTypeError,
    QueueFullError,
    RingKernelRuntime,
)


async def launch_all(rt: RingKernelRuntime, *ids: str, **settings: object) -> None:
    for kid in ids:
        await rt.launch(kid, echo_kernel, **settings)
        await rt.activate(kid)


async def test_connect_delivers_straight_into_the_destination() -> None:
    async with RingKernelRuntime() as rt:
        await launch_all(rt, "a", "b")
        await rt.connect("a", "b")
        sent = [Item(value=i) for i in range(100)]
        for msg in sent:
            await rt.send("a", msg)
        assert [await rt.receive("b", timeout=2) for _ in sent] == sent
        a, b = rt.get_telemetry("a"), rt.get_telemetry("b")
        assert a.messages_sent == b.messages_received == 100
        assert a.output_queue_depth == 0  # nothing went through a's output queue


async def test_fan_out_round_robin() -> None:
    async with RingKernelRuntime() as rt:
        await launch_all(rt, "src", "w0", "w1", "w2")
        await rt.connect("src", ["w0", "w1", "w2"])
        for i in range(9):
            await rt.send("src", Item(value=i))
        got = {
            w: [(await rt.receive(w, timeout=2)).value for _ in range(3)]
            for w in ("w0", "w1", "w2")
        }
    assert got == {"w0": [0, 3, 6], "w1": [1, 4, 7], "w2": [2, 5, 8]}


async def test_fan_out_broadcast() -> None:
    async with RingKernelRuntime() as rt:
        await launch_all(rt, "src", "w0", "w1")
        await rt.connect("src", ["w0", "w1"], mode="broadcast")
        for i in range(3):
            await rt.send("src", Item(value=i))
        for w in ("w0", "w1"):
            assert [(await rt.receive(w, timeout=2)).value for _ in range(3)] == [0, 1, 2]


async def test_fan_in_from_several_sources() -> None:
    async with RingKernelRuntime() as rt:
        await launch_all(rt, "s0", "s1", "sink")
        await rt.connect("s0", "sink")
        await rt.connect("s1", "sink")
        for i in range(10):
            await rt.send(f"s{i % 2}", Item(value=i))
        got = sorted([(await rt.receive("sink", timeout=2)).value for _ in range(10)])
    assert got == list(range(10))


async def test_connect_adds_destinations_with_a_matching_mode() -> None:
    async with RingKernelRuntime() as rt:
        await launch_all(rt, "src", "w0", "w1")
        await rt.connect("src", "w0")
        await rt.connect("src", "w1")
        with pytest.raises(ValueError, match="already routes round_robin"):
            await rt.connect("src", "w1", mode="broadcast")
        with pytest.raises(ValueError, match="already connected to 'w0'"):
            await rt.connect("src", "w0")
        with pytest.raises(ValueError, match="unknown route mode"):
            await rt.connect("w0", "w1", mode="random")
        with pytest.raises(ValueError, match="no destination"):
            await rt.connect("w0", [])


async def test_route_honours_destination_block_backpressure() -> None:
    # src stays blocked on the never-activated dst, so shutdown cannot drain it: keep it short.
    async with RingKernelRuntime(drain_timeout=0.1) as rt:
        await rt.launch("src", echo_kernel)
        await rt.launch("dst", hold_kernel, queue_size=2)
        await rt.activate("src")
        await rt.connect("src", "dst")
        for i in range(5):
            await rt.send("src", Item(value=i))
        await until(lambda: rt.get_telemetry("dst").input_queue_depth == 2)
        # src is blocked sending the third; nothing was dropped or rejected
        assert rt.get_telemetry("src").messages_sent == 2
        assert rt.get_telemetry("dst").messages_dropped == 0


async def test_route_into_reject_destination_raises_in_the_sender() -> None:
    errors: list[BaseException] = []

    async def sender(ctx: object) -> None:
        for i in range(3):
            try:
                await ctx.send(Item(value=i))  # type: ignore[attr-defined]
            except QueueFullError as exc:
                errors.append(exc)
        await hold_kernel(ctx)  # type: ignore[arg-type]

    async with RingKernelRuntime() as rt:
        await rt.launch("dst", hold_kernel, queue_size=2, backpressure="reject")
        await rt.launch("src", sender)
        await rt.connect("src", "dst")
        await rt.activate("src")
        await until(lambda: bool(errors))
        assert rt.get_telemetry("dst").messages_rejected == 1
    assert "kernel 'dst' input queue is full" in str(errors[0])


async def test_route_into_drop_oldest_destination_counts_drops() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("src", echo_kernel)
        await rt.launch("dst", hold_kernel, queue_size=2, backpressure="drop_oldest")
        await rt.activate("src")
        await rt.connect("src", "dst")
        for i in range(5):
            await rt.send("src", Item(value=i))
        await until(lambda: rt.get_telemetry("src").messages_sent == 5)
        assert rt.get_telemetry("dst").messages_dropped == 3
        assert [m.value for m in rt.pending("dst")] == [3, 4]


async def test_connect_checks_declared_types() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("a", echo_kernel, output_type=Other)
        await rt.launch("b", echo_kernel, input_type=Item)
        with pytest.raises(MessageTypeError, match="it sends Other, but 'b' takes Item"):
            await rt.connect("a", "b")


async def test_receive_from_a_routed_kernel_is_refused() -> None:
    async with RingKernelRuntime() as rt:
        await launch_all(rt, "a", "b")
        await rt.connect("a", "b")
        with pytest.raises(KernelStateError, match="sends along its route"):
            await rt.receive("a")


async def test_connect_refuses_a_source_with_unread_output() -> None:
    async with RingKernelRuntime() as rt:
        await launch_all(rt, "a", "b")
        await rt.send("a", Item())
        await until(lambda: rt.get_telemetry("a").output_queue_depth == 1)
        with pytest.raises(KernelStateError, match="1 unread messages"):
            await rt.connect("a", "b")


async def test_deliver_sends_as_a_kernel_and_names_that_kernel_in_a_type_error() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("dst", echo_kernel, input_type=Item)
        await rt.activate("dst")
        await rt.deliver("dst", Item(value=7), sender="src")
        assert (await rt.receive("dst", timeout=2)).value == 7
        with pytest.raises(MessageTypeError, match="kernel 'src'"):
            await rt.deliver("dst", Other(), sender="src")
        with pytest.raises(KernelNotFoundError):
            await rt.deliver("nowhere", Item(), sender="src")
