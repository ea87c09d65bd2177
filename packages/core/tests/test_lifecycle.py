from __future__ import annotations

import asyncio
from typing import Any

import pytest
from core_helpers import Item, Other, echo_kernel, hold_kernel, until
from pydotcompute import (
    BackpressureStrategy,
    KernelAlreadyExistsError,
    KernelContext,
    KernelNotFoundError,
    KernelState,
    KernelStateError,
    MessageTypeError,
    QueueTimeoutError,
    RingKernelRuntime,
    ring_kernel,
)


async def test_lifecycle_states_in_order() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo_kernel)
        assert rt.state("k") is KernelState.LAUNCHED
        await rt.activate("k")
        assert rt.state("k") is KernelState.ACTIVE
        await rt.deactivate("k")
        assert rt.state("k") is KernelState.DEACTIVATED
        await rt.reactivate("k")
        assert rt.state("k") is KernelState.ACTIVE
        await rt.terminate("k")
        assert rt.state("k") is KernelState.TERMINATED
        await rt.terminate("k")  # idempotent
        assert rt.state("k") is KernelState.TERMINATED


@pytest.mark.parametrize(
    ("setup", "operation", "needs"),
    [
        ([], "deactivate", "active"),
        ([], "reactivate", "deactivated"),
        (["activate"], "activate", "launched"),
        (["activate"], "reactivate", "deactivated"),
        (["activate", "deactivate"], "activate", "launched"),
        (["activate", "deactivate"], "deactivate", "active"),
        (["terminate"], "activate", "launched"),
        (["terminate"], "reactivate", "deactivated"),
    ],
)
async def test_illegal_transitions_raise_and_name_the_kernel(
    setup: list[str], operation: str, needs: str
) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo_kernel)
        for step in setup:
            await getattr(rt, step)("k")
        before = rt.state("k")
        with pytest.raises(
            KernelStateError, match=rf"cannot {operation} kernel 'k'.*needs it {needs}"
        ):
            await getattr(rt, operation)("k")
        assert rt.state("k") is before


async def test_unknown_kernel_ids_list_what_exists() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("a", echo_kernel)
        for call in (rt.activate("b"), rt.send("b", Item()), rt.receive("b")):
            with pytest.raises(KernelNotFoundError, match=r"no kernel 'b'.*launched: a"):
                await call
        with pytest.raises(KernelNotFoundError, match="no @ring_kernel is registered as 'nope'"):
            await rt.launch("nope")


async def test_launching_an_id_twice_is_refused() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("a", echo_kernel)
        with pytest.raises(KernelAlreadyExistsError, match="'a' is already launched"):
            await rt.launch("a", echo_kernel)


async def test_launch_settings_validation() -> None:
    async with RingKernelRuntime() as rt:
        with pytest.raises(TypeError, match=r"unknown setting.*queue_sise"):
            await rt.launch("a", echo_kernel, queue_sise=3)
        with pytest.raises(ValueError, match="input_queue_size must be a positive int"):
            await rt.launch("b", echo_kernel, queue_size=0)
        with pytest.raises(TypeError, match="must be an async def"):
            await rt.launch("c", lambda ctx: None)
        with pytest.raises(ValueError, match="unknown backpressure strategy"):
            await rt.launch("d", echo_kernel, backpressure="maybe")
        assert rt.kernel_ids == []


async def test_decorator_settings_and_registration() -> None:
    @ring_kernel(
        kernel_id="sized",
        queue_size=4,
        output_queue_size=2,
        backpressure="reject",
        ordering="priority",
    )
    async def sized(ctx: KernelContext) -> None:
        await hold_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await rt.launch("sized")
        spec = rt.spec("sized")
        assert (spec.input_queue_size, spec.output_queue_size) == (4, 2)
        assert spec.backpressure is BackpressureStrategy.REJECT and spec.ordering == "priority"


def test_ring_kernel_without_parentheses_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="with parentheses"):
        ring_kernel(echo_kernel)  # type: ignore[arg-type]


async def test_deactivated_kernel_receives_nothing_even_without_checking_is_active() -> None:
    got: list[Any] = []
    empty_receives = 0  # receives that timed out: proof the kernel asked and got nothing

    async def greedy(ctx: KernelContext) -> None:  # never looks at is_active
        nonlocal empty_receives
        while not ctx.should_terminate:
            try:
                got.append(await ctx.receive(timeout=0.02))
            except TimeoutError:
                empty_receives += 1

    async with RingKernelRuntime() as rt:
        await rt.launch("g", greedy)
        await rt.send("g", Item(value=0))
        await until(lambda: empty_receives >= 2)
        assert got == []  # launched, not yet active: asked twice, handed nothing
        await rt.activate("g")
        await until(lambda: len(got) == 1)
        assert [m.value for m in got] == [0]
        await rt.deactivate("g")
        for i in range(1, 4):
            await rt.send("g", Item(value=i))  # keeps queueing
        asked = empty_receives
        await until(lambda: empty_receives >= asked + 2)
        assert [m.value for m in got] == [0]
        assert rt.get_telemetry("g").input_queue_depth == 3
        await rt.reactivate("g")
        await until(lambda: len(got) == 4)
        assert [m.value for m in got] == [0, 1, 2, 3]


async def test_deactivated_kernel_queue_honours_backpressure() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo_kernel, queue_size=2, backpressure="drop_oldest")
        for i in range(5):
            await rt.send("k", Item(value=i))
        assert rt.get_telemetry("k").messages_dropped == 3
        await rt.activate("k")
        assert [(await rt.receive("k", timeout=1)).value for _ in range(2)] == [3, 4]


async def test_wait_active_returns_on_activation() -> None:
    seen: list[bool] = []
    waiting = asyncio.Event()

    async def waiter(ctx: KernelContext) -> None:
        waiting.set()
        await ctx.wait_active()
        seen.append(ctx.is_active)
        await hold_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await rt.launch("w", waiter)
        await asyncio.wait_for(waiting.wait(), timeout=5)
        for _ in range(10):  # the waiter gets turns of the loop, and still waits
            await asyncio.sleep(0)
        assert seen == []
        await rt.activate("w")
        await until(lambda: bool(seen))
        assert seen == [True]


async def test_context_flags_follow_the_kernel_and_are_read_only() -> None:
    # ctx.is_active and ctx.should_terminate are plain attributes the kernel keeps up to
    # date: each lifecycle step must show in them at once.
    contexts: list[KernelContext] = []

    async def keeper(ctx: KernelContext) -> None:
        contexts.append(ctx)
        await hold_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await rt.launch("k", keeper)
        await until(lambda: bool(contexts))
        ctx = contexts[0]
        flags = [(ctx.is_active, ctx.should_terminate)]
        for step in (rt.activate, rt.deactivate, rt.reactivate, rt.terminate):
            await step("k")
            flags.append((ctx.is_active, ctx.should_terminate))
        with pytest.raises(AttributeError, match="read-only"):
            ctx.is_active = True
        with pytest.raises(AttributeError, match="read-only"):
            ctx.should_terminate = False
    assert flags == [
        (False, False),  # launched
        (True, False),
        (False, False),  # deactivated
        (True, False),
        (False, True),  # terminated
    ]
    assert (ctx.is_active, ctx.should_terminate) == (False, True)


async def test_input_type_mismatch_fails_at_the_sender_naming_both_types() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("typed", echo_kernel, input_type=Item)
        with pytest.raises(
            TypeError, match="host sent a Other to kernel 'typed', which takes Item"
        ):
            await rt.send("typed", Other())
        with pytest.raises(MessageTypeError, match=r"sent a dict .* not a message"):
            await rt.send("typed", {"value": 1})
        assert rt.get_telemetry("typed").messages_received == 0


async def test_non_message_objects_are_refused() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo_kernel)
        with pytest.raises(MessageTypeError, match="decorate its class with @message"):
            await rt.send("k", 42)


async def test_output_type_is_checked_on_send() -> None:
    errors: list[BaseException] = []

    async def wrong(ctx: KernelContext) -> None:
        msg = await ctx.receive()
        try:
            await ctx.send(Other())
        except MessageTypeError as exc:
            errors.append(exc)
        await ctx.send(msg)
        await hold_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await rt.launch("w", wrong, output_type=Item)
        await rt.activate("w")
        await rt.send("w", Item(value=1))
        assert (await rt.receive("w", timeout=1)).value == 1
    assert "output_type is Item" in str(errors[0])


async def test_an_output_type_that_is_no_message_class_still_refuses_non_messages() -> None:
    # A send must pass both checks (the output_type, and being a message): with an
    # output_type that is no message class, no send takes the one-check fast path.
    errors: list[str] = []

    async def sender(ctx: KernelContext) -> None:
        received = await ctx.receive()
        for wrong in ({"value": 1}, Item(value=2), received):
            try:
                await ctx.send(wrong)
            except MessageTypeError as exc:
                errors.append(str(exc))
        await hold_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await rt.launch("w", sender, output_type=dict)
        await rt.activate("w")
        await rt.send("w", Item(value=1))
        with pytest.raises(QueueTimeoutError):
            await rt.receive("w", timeout=0.2)  # nothing got through
    assert "sent a dict, which is not a message" in errors[0]
    assert "sent a Item, but its output_type is dict" in errors[1]
    assert len(errors) == 3 and "output_type is dict" in errors[2]


async def test_receive_batch_waits_for_the_first_then_takes_what_is_there() -> None:
    batches: list[list[int]] = []

    async def batcher(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                batch = await ctx.receive_batch(4, timeout=0.05)
            except TimeoutError:
                continue
            batches.append([m.value for m in batch])

    async with RingKernelRuntime() as rt:
        await rt.launch("b", batcher)
        for i in range(6):
            await rt.send("b", Item(value=i))
        await rt.activate("b")
        await until(lambda: len(batches) == 2)
        await rt.send("b", Item(value=6))
        await until(lambda: len(batches) == 3)
    assert batches == [[0, 1, 2, 3], [4, 5], [6]]


async def test_receive_batch_validates_max_items() -> None:
    async def bad(ctx: KernelContext) -> None:
        await ctx.receive_batch(0)

    async with RingKernelRuntime() as rt:
        await rt.launch("bad", bad)
        await until(lambda: rt.state("bad") is KernelState.FAILED)
        assert rt.state("bad") is KernelState.FAILED
        assert "max_items must be a positive int" in str(rt.kernel_error("bad"))


async def test_ctx_receive_timeout_is_a_timeout_error() -> None:
    caught: list[BaseException] = []

    async def k(ctx: KernelContext) -> None:
        try:
            await ctx.receive(timeout=0.01)
        except TimeoutError as exc:
            caught.append(exc)
        await hold_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await rt.launch("k", k)
        await rt.activate("k")
        await until(lambda: bool(caught))
    assert isinstance(caught[0], QueueTimeoutError)


async def test_ctx_exposes_kernel_id_and_runtime() -> None:
    seen: list[Any] = []

    async def k(ctx: KernelContext) -> None:
        seen.extend([ctx.kernel_id, ctx.runtime])
        await hold_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await rt.launch("me", k)
        await until(lambda: bool(seen))
    assert seen == ["me", rt]


async def test_send_to_delivers_into_another_kernels_input() -> None:
    async def forwarder(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            await ctx.send_to("sink", msg)

    async with RingKernelRuntime() as rt:
        await rt.launch("f", forwarder)
        await rt.launch("sink", echo_kernel)
        await rt.activate("f")
        await rt.activate("sink")
        await rt.send("f", Item(value=5))
        assert (await rt.receive("sink", timeout=1)).value == 5
        assert rt.get_telemetry("f").messages_sent == 1
