"""What the runtime checks report: blocking calls and loop lags.

Both event types are frozen dataclasses holding only plain values (strings,
numbers), so they can be logged, pickled to another process or compared in a
test without keeping frames alive.
"""

from __future__ import annotations

from dataclasses import dataclass

from asgishift.runtime._stack import StackFrame, format_stack


@dataclass(frozen=True)
class BlockingCall:
    """A call to a catalogued blocking callable made on an event-loop thread.

    :param code: the audit rule code that names the call (``"ASH101"``).
    :param call: the canonical dotted name of the callable (``"time.sleep"``).
    :param message: the rule's message formatted for this call.
    :param stack: the formatted stack of the caller, most recent call last,
        limited to the detector's ``stack_limit`` frames, every frame shown.
    :param frames: the same stack as :class:`~asgishift.runtime._stack.StackFrame`
        records, which :meth:`format` trims to the application's frames.
    :param thread_name: name of the thread that made the call.
    :param thread_id: :func:`threading.get_ident` of that thread.
    :param timestamp: wall-clock time of the call, seconds since the epoch.
    """

    code: str
    call: str
    message: str
    stack: str
    thread_name: str
    thread_id: int
    timestamp: float
    frames: tuple[StackFrame, ...] = ()

    def format(self, *, full_stack: bool = False) -> str:
        """Return a multi-line report: rule code, message, thread and stack.

        :param full_stack: print every frame; by default runs of library frames
            (standard library, installed packages, asgishift) are folded into one line.
        """
        return (
            f"{self.code} blocking call {self.call}() on the event-loop thread "
            f"{self.thread_name!r}: {self.message}\n"
            f"Stack {_stack_parts(self.stack, self.frames, full_stack)}"
        )


@dataclass(frozen=True)
class LoopLag:
    """The event loop did not run a heartbeat callback within the threshold.

    :param lag_ms: how long the heartbeat waited, in milliseconds. It is a lower
        bound of how long the loop was held (see :class:`LoopLagMonitor`).
    :param threshold_ms: the monitor's threshold, in milliseconds.
    :param stack: the loop thread's stack captured when the threshold was
        crossed, most recent call last, every frame shown: it names the callback
        holding the loop.
    :param thread_name: name of the loop thread.
    :param thread_id: :func:`threading.get_ident` of the loop thread.
    :param timestamp: wall-clock time the stack was captured, seconds since the
        epoch.
    :param frames: the same stack as records (empty when it is unknown), which
        :meth:`format` trims to the application's frames.
    """

    lag_ms: float
    threshold_ms: float
    stack: str
    thread_name: str
    thread_id: int
    timestamp: float
    frames: tuple[StackFrame, ...] = ()

    def format(self, *, full_stack: bool = False) -> str:
        """Return a multi-line report: the lag, the threshold and the stack.

        :param full_stack: print every frame instead of folding library frames.
        """
        return (
            f"event loop held for at least {self.lag_ms:.1f} ms "
            f"(threshold {self.threshold_ms:g} ms) on thread {self.thread_name!r}\n"
            f"Loop thread stack when the threshold was crossed "
            f"{_stack_parts(self.stack, self.frames, full_stack)}"
        )


def _stack_parts(stack: str, frames: tuple[StackFrame, ...], full: bool) -> str:
    """The end of the stack's heading and the stack, folded unless ``full`` or unfoldable."""
    trimmed = "" if full or not frames else format_stack(frames)
    if not trimmed or trimmed == stack:
        return f"(most recent call last):\n{stack}"
    return f"(most recent call last; library frames folded):\n{trimmed}"


class BlockingCallError(RuntimeError):
    """Raised instead of a blocking call when the detector has ``raise_on_block=True``.

    :param event: the :class:`BlockingCall` that was refused.
    """

    def __init__(self, event: BlockingCall) -> None:
        super().__init__(event.format())
        self.event = event


__all__ = ["BlockingCall", "BlockingCallError", "LoopLag"]
