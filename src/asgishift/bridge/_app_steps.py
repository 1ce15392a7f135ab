"""Run an app's coroutine step by step inside its task, with a hook after each step.

``ASGIToWSGI`` collects what an app sends between two suspensions into one batch
for the WSGI thread (``_asgi_exchange.py``); :class:`Stepper` is what sends the
batch on the moment the app's task suspends, with no extra turn of the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from types import CoroutineType
from typing import Any

__all__ = ["Stepper", "steps_of"]


def steps_of(awaitable: Awaitable[None]) -> Any:
    """Return the iterator that runs ``awaitable`` step by step (a coroutine is its own).

    :param awaitable: what an ASGI app's call returned (PEP 492: a coroutine, or
        any object with ``__await__``).
    """
    if type(awaitable) is CoroutineType:
        return awaitable
    return awaitable.__await__()


class Stepper:
    """Drive an app's coroutine inside its task, calling ``after_step`` whenever it suspends.

    The app waits for anything (a sleep, ``receive()``, a database): ``after_step``
    runs at once, in the same turn of the loop. Futures the app waits on and
    exceptions thrown in (cancellation) pass through unchanged, so the app runs in
    a real task: ``asyncio.current_task()`` and anyio work as usual.

    :param steps: the app's coroutine (or its awaitable's ``__await__()`` iterator,
        see :func:`steps_of`), already started: its first step has run.
    :param waited_on: what that first step yielded (the future the app waits on).
    :param after_step: called with no arguments after every later step that
        suspends (not after the last).
    """

    __slots__ = ("_after_step", "_steps", "_waited_on")

    def __init__(self, steps: Any, waited_on: Any, after_step: Callable[[], None]) -> None:
        self._steps = steps
        self._waited_on = waited_on
        self._after_step = after_step

    def __await__(self) -> Generator[Any, None, None]:
        steps = self._steps
        send = steps.send
        throw = steps.throw
        after_step = self._after_step
        waited_on = self._waited_on
        self._waited_on = None
        while True:
            try:
                value = yield waited_on
            except BaseException as exc:  # cancellation, GeneratorExit: pass it to the app
                try:
                    waited_on = throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waited_on = send(value)
                except StopIteration:
                    return
            after_step()
