"""Many timers on one loop timer (rig.serving.deadlines): callbacks in their deadlines'
order, cancelled ones never run, one loop timer however many are held, cancelled ones
swept, a failing callback reported without stopping the rest."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rig.serving.deadlines import Deadlines, TimedLoop


def _run(test: Any) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


@settings(max_examples=40, deadline=None)
@given(
    plan=st.lists(
        st.tuples(st.integers(min_value=0, max_value=20), st.booleans()), min_size=1, max_size=30
    )
)
def test_callbacks_run_in_their_deadlines_order_and_cancelled_ones_never(
    plan: list[tuple[int, bool]],
) -> None:
    """Deadlines ``ms`` after one instant, some cancelled: the rest run ordered by their
    time, those set for the same time in the order they were set."""

    async def test() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines()
        ran: list[int] = []
        base = loop.time()
        handles = []
        for index, (ms, _) in enumerate(plan):
            handles.append(deadlines.call_at(base + ms / 1000, lambda i=index: ran.append(i)))
        for handle, (_, cancel) in zip(handles, plan, strict=True):
            if cancel:
                handle.cancel()
        done = loop.create_future()
        deadlines.call_at(base + 0.021, lambda: done.set_result(None))  # after them all
        await done
        expected = sorted(
            (index for index, (_, cancel) in enumerate(plan) if not cancel),
            key=lambda index: plan[index][0],
        )
        assert ran == expected
        assert all(handle.cancelled() for handle in handles)  # ran or cancelled
        assert deadlines.pending == 0

    _run(test)


def test_a_thousand_deadlines_hold_one_loop_timer_and_cancelled_ones_are_swept() -> None:
    async def test() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines()

        def loop_timers() -> int:
            """The loop's live timers that are the deadlines' (asyncio's own loop)."""
            scheduled = loop._scheduled  # type: ignore[attr-defined]
            return sum(1 for h in scheduled if not h.cancelled() and h._callback == deadlines._fire)

        handles = [deadlines.call_later(3600 + index, lambda: None) for index in range(1000)]
        assert loop_timers() == 1
        assert deadlines.pending == 1000
        for handle in handles[:900]:
            handle.cancel()
        assert deadlines.pending == 100
        assert len(deadlines) < 2 * 100 + 64  # not 1,000: swept as they were cancelled
        # An earlier deadline takes the one loop timer; it runs, and the timer moves on.
        fired = loop.create_future()
        deadlines.call_later(0.01, lambda: fired.set_result(None))
        await fired
        assert loop_timers() == 1
        assert deadlines.pending == 100

    _run(test)


def test_a_failing_callback_is_reported_and_the_others_run() -> None:
    async def test() -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: reported.append(context))
        deadlines = Deadlines()
        ran: list[str] = []
        at = loop.time() + 0.005

        def fail() -> None:
            raise ValueError("boom")

        later: list[Any] = []
        deadlines.call_at(at, fail)
        deadlines.call_at(at, lambda: later[0].cancel())
        later.append(deadlines.call_at(at, lambda: ran.append("cancelled by the one before")))
        done = loop.create_future()
        deadlines.call_at(at, lambda: done.set_result(ran.append("last")))
        deadlines.call_at(at - 0.001, lambda: deadlines.call_at(0.0, lambda: ran.append("set")))
        await done
        # "set" (due in the past, set by a callback) runs at the next timer, after "last":
        # wait for it through another deadline.
        more = loop.create_future()
        deadlines.call_later(0.0, lambda: more.set_result(None))
        await more
        assert [type(context["exception"]) for context in reported] == [ValueError]
        assert ran[0] == "last" and "set" in ran
        assert "cancelled by the one before" not in ran
        assert deadlines.pending == 0

    _run(test)


def test_a_timed_loop_keeps_call_later_on_the_deadlines_and_the_rest_on_the_loop() -> None:
    async def test() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines()
        timed = TimedLoop(loop, deadlines)
        got = loop.create_future()
        handle = timed.call_later(0.001, got.set_result, "args passed")
        assert deadlines.pending == 1 and not handle.cancelled()
        assert await got == "args passed"
        assert timed.time() <= loop.time()
        assert timed.create_task is not None and timed.create_future().get_loop() is loop
        soon = loop.create_future()
        timed.call_soon(soon.set_result, 1)
        assert await soon == 1

    _run(test)


def test_deadlines_set_from_a_new_loop_run_there_and_the_old_loop_s_are_dropped() -> None:
    deadlines = Deadlines()
    ran: list[str] = []

    async def first() -> None:
        deadlines.call_later(3600, lambda: ran.append("first loop"))
        assert deadlines.pending == 1

    async def second() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        deadlines.call_later(0.001, lambda: done.set_result(ran.append("second loop")))
        assert deadlines.pending == 1  # the first loop's is gone with it
        await done

    asyncio.run(first())
    _run(second)
    assert ran == ["second loop"]
