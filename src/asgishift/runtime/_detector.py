"""Report blocking calls made on an event-loop thread while the app runs."""

from __future__ import annotations

import logging
import threading
import time
import types
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from asgishift.runtime import _patching
from asgishift.runtime._events import BlockingCall, BlockingCallError
from asgishift.runtime._stack import StackFrame, capture, format_stack, is_library

if TYPE_CHECKING:
    from asgishift.audit._model import Rule

logger = logging.getLogger("asgishift.runtime")

#: Rule family whose ``calls`` the detector patches by default: blocking calls.
DEFAULT_FAMILY = "ASH1"


class _KeepMissing(dict[str, str]):
    """Format mapping that leaves unknown ``{placeholders}`` as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def default_rules() -> tuple[Rule, ...]:
    """Return the catalogue's blocking-call rules (family ``ASH1``) that name calls.

    Loads the catalogue's rule modules (:mod:`asgishift.audit.rules`), which
    import the walk's plug-in interface (``asgishift.audit._scope``) but not the
    audit's walker, file discovery or engine: the runtime reads the rules'
    ``calls`` and analyses no file.

    :raise ImportError: when the audit catalogue (``asgishift.audit.rules``)
        is not available.
    """
    from asgishift.audit.rules import all_rules

    return tuple(r for r in all_rules() if r.family == DEFAULT_FAMILY and r.calls)


class BlockingDetector:
    """Flag calls to catalogued blocking callables made on an event-loop thread.

    Installing the detector wraps every callable named by the rules' ``calls``
    (see :mod:`asgishift.runtime._patching` for what can and cannot be
    wrapped). A wrapped call made on a thread that is running an asyncio event
    loop is recorded as a :class:`BlockingCall` in :attr:`events` and logged
    at WARNING on ``asgishift.runtime`` with the rule code, message and stack;
    the call then proceeds, or raises :class:`BlockingCallError` instead with
    ``raise_on_block=True``. Calls on worker threads (``asyncio.to_thread``,
    ``loop.run_in_executor``, ``sync_to_async``) have no running loop and are
    not flagged. Only asyncio loops (including uvloop) are recognised.

    Use it as a context manager, or call :meth:`install` and :meth:`uninstall`;
    both are idempotent and thread-safe, and several detectors may be
    installed at once (the originals come back when the last one uninstalls).

    :param rules: the rules whose ``calls`` are watched; ``None`` means the
        audit catalogue's ``ASH1xx`` rules (:func:`default_rules`).
    :param extra_blocking: more dotted names to watch, reported under
        ``extra_code`` (the audit's ``extra_blocking`` setting).
    :param extra_code: rule code used for ``extra_blocking`` names.
    :param raise_on_block: raise :class:`BlockingCallError` instead of making
        the call (meant for tests).
    :param stack_limit: how many frames of the caller's stack to keep.
    :param log: log each event at WARNING; turn off when only :attr:`events`
        is wanted.
    :param full_stack: log every frame of the stack; by default runs of library
        frames (standard library, installed packages, asgishift) are folded into
        one line so the application's frames stand out (:mod:`asgishift.runtime._stack`).
    :param max_events: keep at most this many events in :attr:`events` (later
        ones are still logged and counted in :attr:`dropped`); ``None`` keeps
        all. Bound it in long-running servers.
    :param log_repeats: log every event; ``False`` logs the first event of each
        call site at WARNING and later ones at DEBUG, so a blocking call in a hot
        path does not flood a server log. A call site is the rule, the call and
        the file and line of the innermost application frame (the caller's when
        the stack has none), so two places of the application that reach the
        same blocking call inside a library are two sites.
    """

    def __init__(
        self,
        rules: Iterable[Rule] | None = None,
        *,
        extra_blocking: Sequence[str] = (),
        extra_code: str = "ASH199",
        raise_on_block: bool = False,
        stack_limit: int = 50,
        log: bool = True,
        max_events: int | None = None,
        log_repeats: bool = True,
        full_stack: bool = False,
    ) -> None:
        self._rules = tuple(default_rules() if rules is None else rules)
        self._rule_for: dict[str, tuple[str, str]] = {}
        for rule in self._rules:
            for call in rule.calls:
                self._rule_for.setdefault(call, (rule.code, rule.message))
        for call in extra_blocking:
            self._rule_for.setdefault(
                call, (extra_code, "Blocking call {call}() listed in extra_blocking")
            )
        self.raise_on_block = raise_on_block
        self.stack_limit = stack_limit
        self.log = log
        self.full_stack = full_stack
        #: Every :class:`BlockingCall` seen since installation (or :meth:`clear`).
        self.events: list[BlockingCall] = []
        #: Events not kept because :attr:`events` held ``max_events`` already.
        self.dropped = 0
        self.max_events = max_events
        self.log_repeats = log_repeats
        self._sites: set[tuple[str, str, str, int]] = set()
        #: Watched names that could not be wrapped, mapped to the reason.
        self.unpatchable: dict[str, str] = {}
        self._lock = threading.Lock()
        self._installed = False
        # Stored once: the patch registry compares listeners by identity.
        self._listener = self._on_call

    @property
    def calls(self) -> tuple[str, ...]:
        """The dotted names this detector watches (wrapped or not)."""
        return tuple(self._rule_for)

    @property
    def installed(self) -> bool:
        """Whether the wrappers of this detector are in place."""
        return self._installed

    def install(self) -> BlockingDetector:
        """Wrap the watched callables; a second call does nothing.

        Names whose module is not installed, or that live on built-in types,
        are skipped and listed in :attr:`unpatchable` (logged at DEBUG).

        :return: this detector, for chaining.
        """
        with self._lock:
            if self._installed:
                return self
            self.unpatchable = _patching.acquire(self._rule_for, self._listener)
            self._installed = True
        for name, reason in self.unpatchable.items():
            logger.debug("not detectable at run time: %s (%s)", name, reason)
        return self

    def uninstall(self) -> None:
        """Put the original callables back (when no other detector uses them)."""
        with self._lock:
            if not self._installed:
                return
            _patching.release(self._rule_for, self._listener, self.unpatchable)
            self._installed = False

    def clear(self) -> list[BlockingCall]:
        """Forget the recorded events and return them."""
        with self._lock:
            events, self.events = self.events, []
        return events

    def __enter__(self) -> BlockingDetector:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.uninstall()

    def _on_call(self, names: Sequence[str], frame: types.FrameType) -> None:
        """Record, log and maybe refuse one call; runs on the loop thread.

        :param names: the catalogued names of the called function; the first
            one this detector watches is reported.
        :raise BlockingCallError: with ``raise_on_block=True``.
        """
        for name in names:
            found = self._rule_for.get(name)
            if found is not None:
                break
        else:
            return
        code, template = found
        frames = capture(frame, self.stack_limit)
        thread = threading.current_thread()
        event = BlockingCall(
            code=code,
            call=name,
            message=template.format_map(_KeepMissing(call=name)),
            stack=format_stack(frames, full=True),
            thread_name=thread.name,
            thread_id=threading.get_ident(),
            timestamp=time.time(),
            frames=frames,
        )
        site = (code, name, *_call_site(frames, frame))
        with self._lock:
            if self.max_events is None or len(self.events) < self.max_events:
                self.events.append(event)
            else:
                self.dropped += 1
            repeat = site in self._sites
            self._sites.add(site)
        if self.log:
            level = logging.DEBUG if repeat and not self.log_repeats else logging.WARNING
            logger.log(level, "%s", event.format(full_stack=self.full_stack))
        if self.raise_on_block:
            raise BlockingCallError(event)


def _call_site(frames: Sequence[StackFrame], caller: types.FrameType) -> tuple[str, int]:
    """File and line of the innermost application frame, else of the caller.

    :param frames: the captured stack, outermost first.
    :param caller: the frame that called the blocking function.
    """
    for entry in reversed(frames):
        if not is_library(entry.filename):
            return entry.filename, entry.lineno
    return caller.f_code.co_filename, caller.f_lineno


__all__ = ["BlockingDetector", "default_rules"]
