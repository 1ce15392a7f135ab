"""Resolve catalogue names to attributes and swap call wrappers in, process-wide.

Strategy: one wrapper per patched location (an attribute of a module or a
class), shared by every installed :class:`~asgishift.runtime.BlockingDetector`
and reference-counted, so two detectors (the pytest fixture and the
``--asgishift-detect-blocking`` flag, or a middleware and a test) can be
installed at once and the original is put back when the last one uninstalls.
Names that reach the same location (``requests.Session.get`` and
``requests.sessions.Session.get``) share its wrapper. A wrapper costs one C
call (``asyncio.events._get_running_loop``) when no loop runs on the calling
thread (about 0.6 µs per call); everything else happens only on an event-loop
thread.

What can be patched:

* module attributes (``time.sleep``, ``socket.create_connection``,
  ``builtins.open``, ``os.system``, ``sqlite3.connect``, ``requests.get``): the
  module's attribute is replaced. Names bound before installation with
  ``from time import sleep as snooze`` are found by scanning the globals of
  every imported non-standard-library module and replaced too; names bound
  later pick up the wrapper. Uninstalling rebinds both kinds to the original.
* methods of Python classes (``pathlib.Path.read_text``,
  ``subprocess.Popen.communicate``, ``threading.Event.wait``,
  ``socket.socket.connect`` through the Python subclass ``socket.socket``):
  set on that class, so subclasses inherit the wrapper unless they override
  the method. A class name wraps its ``__init__`` so the class keeps its
  identity.

What cannot (reported in :attr:`BlockingDetector.unpatchable` with the
reason, and left to ``asgishift audit``):

* methods of built-in (C) types: ``sqlite3.Connection.execute``,
  ``sqlite3.Cursor.fetchall``, ``io.TextIOWrapper.read``; CPython refuses
  ``setattr`` on immutable types.
* ``threading.Lock.acquire`` and ``threading.RLock.acquire``: ``Lock`` and
  ``RLock`` are factory functions returning C lock objects (on 3.13 ``Lock``
  is the immutable C type itself).
* other copies of a callable: default arguments, closures, instance or class
  attributes, and private copies inside the standard library
  (``tokenize._builtin_open``), which the alias scan leaves alone.
* modules that are not installed when the detector installs.

Installing imports nothing but the standard library. A watched third-party module
(``requests``, ``sqlalchemy.orm``, ``psycopg``...) that the process has not
imported yet is patched when it is imported, right after its code ran and before
the importer gets it (:mod:`asgishift.runtime._import_watch`); a name that turns
out not to be patchable then is added to the detector's ``unpatchable`` at that
moment. Before, installing imported every watched package that is installed:
``sys.modules`` grew from 103 to 728 modules on ``install()`` (Python 3.11 with
the test dependencies), then to about 265, now to about 230: reading the
catalogue no longer loads the audit's walker and file discovery (pathspec), see
:func:`asgishift.runtime._detector.default_rules`.

What is deliberately not reported, because it does not block or is the event
loop's own business: calls made on behalf of ``asyncio``, ``uvloop``,
``concurrent.futures`` or ``threading`` (``Popen`` reading its error pipe for
``create_subprocess_exec``, a thread pool polling its semaphore); socket
methods on non-blocking sockets (asyncio's and Twisted's transports); ``os.read``
and ``os.write`` on non-blocking descriptors (wake-up pipes); polling
waits (``acquire(blocking=False)``, ``wait(0)``, ``put_nowait``); and calls made
while a reported call is running (``subprocess.run`` is reported once, not
again for its ``Popen.communicate``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgishift.runtime._events import BlockingCallError
from asgishift.runtime._import_watch import ImportWatch

logger = logging.getLogger("asgishift.runtime")

#: ``listener(names, caller_frame)``: called on an event-loop thread before the
#: original runs, with every catalogued name of the callable; may raise to
#: refuse the call.
Listener = Callable[[Sequence[str], types.FrameType], None]

#: Top-level packages whose own calls are the event loop's business: asyncio
#: starts subprocesses and reads pipes on the loop thread by design, and
#: ``loop.run_in_executor`` polls a semaphore and waits for a new worker
#: thread to start (``concurrent.futures``, ``threading``).
_EXEMPT_CALLERS = frozenset({"asyncio", "uvloop", "concurrent", "threading"})
#: Calls made by run-time detection itself are never reported.
_OWN_PACKAGE = __name__.rpartition(".")[0] + "."

#: ``skip(args, kwargs)``: tell from the arguments that a call cannot block.
Skip = Callable[[tuple[Any, ...], dict[str, Any]], bool]

_lock = threading.RLock()
_tls = threading.local()
_listeners: tuple[Listener, ...] = ()


@dataclass
class _Patch:
    """One swapped attribute and everything needed to put the original back."""

    names: list[str]
    owner: Any
    attr: str
    had_own: bool
    raw: Any
    wrapper_raw: Any
    original: Callable[..., Any]
    wrapper: Callable[..., Any]
    aliases: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    users: int = 0


#: Patches by catalogued name; several names can share one patch
#: (``requests.Session.get`` and ``requests.sessions.Session.get``).
_patches: dict[str, _Patch] = {}
#: The same patches by location, ``(id(owner), attribute)``.
_locations: dict[tuple[int, str], _Patch] = {}


def _import_owner(name: str) -> tuple[Any, list[str]] | str:
    """Import the longest importable module prefix of ``name``.

    :return: ``(module, remaining attribute parts)``, or a reason string.
    """
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        modname = ".".join(parts[:cut])
        try:
            spec = importlib.util.find_spec(modname)
        except (ImportError, ValueError):
            # "time.sleep" is not a package: try a shorter prefix.
            continue
        if spec is None:
            continue
        try:
            return importlib.import_module(modname), parts[cut:]
        except Exception as exc:  # an installed module may still fail to import
            return f"importing {modname} failed: {exc!r}"
    return f"module {parts[0]!r} is not installed"


def _resolve(name: str) -> tuple[Any, str, Any, bool] | str:
    """Find where the callable named ``name`` is stored.

    :return: ``(owner, attribute, raw stored value, owner has its own
        attribute)``, or a reason string when it cannot be patched.
    """
    found = _import_owner(name)
    if isinstance(found, str):
        return found
    return _resolve_in(name, *found)


def _resolve_in(name: str, owner: Any, rest: list[str]) -> tuple[Any, str, Any, bool] | str:
    """Find where ``name`` is stored, from its imported module ``owner`` and the
    attribute path ``rest`` below it; see :func:`_resolve`."""
    for part in rest[:-1]:
        try:
            owner = getattr(owner, part)
        except AttributeError:
            return f"{getattr(owner, '__name__', owner)!s} has no attribute {part!r}"
    attr = rest[-1]
    if isinstance(owner, types.ModuleType):
        if attr not in vars(owner):
            return f"{owner.__name__} has no attribute {attr!r}"
        raw = vars(owner)[attr]
        if isinstance(raw, type):
            # Wrap the constructor so the class keeps its identity (isinstance,
            # subclassing).
            owner, attr = raw, "__init__"
        else:
            return owner, attr, raw, True
    if not isinstance(owner, type):
        return (
            f"{name.rpartition('.')[0]} is a {type(owner).__name__}, not a class: calls on "
            "the objects it returns cannot be patched at run time"
        )
    try:
        raw = inspect.getattr_static(owner, attr)
    except AttributeError:
        return f"{owner.__qualname__} has no attribute {attr!r}"
    return owner, attr, raw, attr in vars(owner)


def _nonblocking_socket(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Tell whether a ``socket.socket`` method is called on a non-blocking socket.

    asyncio's selector loop calls ``recv``/``send``/``accept`` on the loop
    thread on sockets with a timeout of ``0.0``; those never block.
    """
    import socket

    return bool(args) and isinstance(args[0], socket.socket) and args[0].gettimeout() == 0.0


#: ``os`` functions that take a file descriptor first and cannot block when it
#: is in non-blocking mode (event-loop wake-up pipes, asyncio's pipe transports).
_FD_IO = frozenset({"read", "write", "readv", "writev", "pread", "pwrite"})


def _nonblocking_fd(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Tell whether an ``os`` read or write is called on a non-blocking descriptor."""
    if not args or not isinstance(args[0], int):
        return False
    try:
        return not os.get_blocking(args[0])
    except OSError:  # a closed descriptor: let the call fail on its own
        return False


#: For waits in ``threading`` and ``queue``: ``(position of the block flag,
#: its keyword, position of the timeout)`` counting ``self`` as 0; ``-1`` when
#: the method has no such parameter. ``lock.acquire(blocking=False)``,
#: ``queue.put_nowait()`` and ``event.wait(0)`` only poll.
_WAIT_PARAMETERS = {
    "acquire": (1, "blocking", 2),
    "get": (1, "block", 2),
    "put": (2, "block", 3),
    "wait": (-1, "", 1),
    "join": (-1, "", 1),
}


def _polling_wait(attr: str) -> Skip:
    """Build the ``skip`` predicate for the wait method ``attr``."""
    flag_pos, flag_name, timeout_pos = _WAIT_PARAMETERS[attr]

    def skip(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        if flag_pos >= 0:
            flag = args[flag_pos] if len(args) > flag_pos else kwargs.get(flag_name, True)
            if not flag:
                return True
        timeout = args[timeout_pos] if len(args) > timeout_pos else kwargs.get("timeout")
        return timeout is not None and timeout == 0

    return skip


def _skip_for(owner: Any, attr: str) -> Skip | None:
    """Return the argument check that spots non-blocking uses, if the call has one."""
    import socket

    if isinstance(owner, types.ModuleType) and owner.__name__ == "os" and attr in _FD_IO:
        return _nonblocking_fd
    if not isinstance(owner, type):
        return None
    if issubclass(owner, socket.socket):
        return _nonblocking_socket
    if owner.__module__ in {"threading", "queue"} and attr in _WAIT_PARAMETERS:
        return _polling_wait(attr)
    return None


def _called_by_loop_machinery(frame: types.FrameType | None) -> bool:
    """Tell whether the call was made on behalf of asyncio or a thread pool.

    Walks up from the caller through standard-library frames (and this
    module's wrappers): reaching a package of :data:`_EXEMPT_CALLERS` first
    means the loop itself made the call (``Popen`` reading its error pipe for
    ``asyncio.create_subprocess_exec``), and reaching this package (the lag
    monitor joining its watchdog as it stops) means detection itself did;
    reaching any other code first means the application did.
    """
    stdlib = sys.stdlib_module_names
    while frame is not None:
        modname = frame.f_globals.get("__name__", "")
        top = modname.partition(".")[0]
        if top in _EXEMPT_CALLERS or modname.startswith(_OWN_PACKAGE):
            return True
        if top not in stdlib and modname != __name__:
            return False
        frame = frame.f_back
    return False


def _dispatch(names: list[str], frame: types.FrameType) -> None:
    """Tell every listener; re-raise the first refusal after all have seen the call.

    :raise BlockingCallError: when a listener refuses the call. Any other
        error of a listener is logged, never passed on to the application.
    """
    refusal: BlockingCallError | None = None
    for listener in _listeners:
        try:
            listener(names, frame)
        except BlockingCallError as exc:
            refusal = refusal or exc
        except Exception:
            logger.exception("asgishift.runtime failed to report a call to %s", names[0])
    if refusal is not None:
        raise refusal


def _make_wrapper(
    names: list[str], func: Callable[..., Any], skip: Skip | None
) -> Callable[..., Any]:
    """Build the function that replaces ``func``; see the module docstring.

    :param names: the catalogued names of ``func``, shared with its
        :class:`_Patch` (the list grows when another name resolves to it).
    """
    from asyncio.events import _get_running_loop

    tls = _tls
    getframe = sys._getframe

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Fast path: not on an event-loop thread, or already inside a reported
        # call (subprocess.run -> Popen.communicate, or our own stack formatting
        # reading source files).
        if _get_running_loop() is None or getattr(tls, "busy", False):
            return func(*args, **kwargs)
        if skip is not None and skip(args, kwargs):
            return func(*args, **kwargs)
        frame = getframe(1)
        if _called_by_loop_machinery(frame):
            return func(*args, **kwargs)
        tls.busy = True
        try:
            _dispatch(names, frame)
            return func(*args, **kwargs)
        finally:
            tls.busy = False

    functools.update_wrapper(wrapper, func)
    wrapper.__asgishift_blocking__ = names  # type: ignore[attr-defined]
    return wrapper


def _patch_one(name: str, resolved: tuple[Any, str, Any, bool] | str) -> _Patch | str:
    """Swap the wrapper of ``name`` in where :func:`_resolve` found it, or reuse the
    patch already there.

    :param resolved: what :func:`_resolve` (or :func:`_resolve_in`) returned for ``name``.
    :return: the patch, or the reason it cannot be made.
    """
    if isinstance(resolved, str):
        return resolved
    owner, attr, raw, had_own = resolved
    existing = _locations.get((id(owner), attr))
    if existing is not None and existing.owner is owner:
        existing.names.append(name)
        return existing
    names = [name]
    if isinstance(raw, (staticmethod, classmethod)):
        original = raw.__func__
        wrapper = _make_wrapper(names, original, _skip_for(owner, attr))
        wrapper_raw: Any = type(raw)(wrapper)
    elif callable(raw) and not isinstance(raw, type):
        original = raw
        wrapper = wrapper_raw = _make_wrapper(names, raw, _skip_for(owner, attr))
    else:
        return f"{name} is a {type(raw).__name__}, not a function"
    try:
        setattr(owner, attr, wrapper_raw)
    except (TypeError, AttributeError) as exc:
        return (
            f"{getattr(owner, '__qualname__', owner)} is a built-in type whose attributes "
            f"cannot be replaced ({exc}); only `asgishift audit` finds this call"
        )
    patch = _Patch(names, owner, attr, had_own, raw, wrapper_raw, original, wrapper)
    _locations[(id(owner), attr)] = patch
    return patch


def _patch_aliases(patches: Iterable[_Patch]) -> None:
    """Replace names bound to an original before installation, in one pass.

    Only module-level callables are searched for, only in the globals of
    non-standard-library modules: standard-library internals that keep a
    private copy (``tokenize._builtin_open``) are the interpreter's business.
    """
    by_id: dict[int, _Patch] = {}
    for patch in patches:
        if isinstance(patch.owner, types.ModuleType):
            by_id.setdefault(id(patch.original), patch)
    if not by_id:
        return
    stdlib = sys.stdlib_module_names
    for modname, module in list(sys.modules.items()):
        top = modname.partition(".")[0]
        if module is None or top in stdlib or modname.startswith("asgishift.runtime"):
            continue
        try:
            namespace = getattr(module, "__dict__", None)
        except Exception:  # lazy-module proxies in sys.modules may raise on access
            continue
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            found = by_id.get(id(value))
            if found is not None and value is found.original:
                namespace[key] = found.wrapper
                found.aliases.append((namespace, key))


def _unpatch(patch: _Patch) -> None:
    for namespace, key in patch.aliases:
        if namespace.get(key) is patch.wrapper:
            namespace[key] = patch.original
    current = vars(patch.owner).get(patch.attr)
    if current is not patch.wrapper_raw:
        logger.warning(
            "%s was replaced by someone else after asgishift patched it; leaving %r in place",
            patch.names[0],
            current,
        )
        return
    if patch.had_own:
        setattr(patch.owner, patch.attr, patch.raw)
    else:
        delattr(patch.owner, patch.attr)


def _restore_later_bindings(patches: Iterable[_Patch]) -> None:
    """Rebind to the original the names bound to a wrapper while it was installed.

    A module imported during installation that ran ``from time import sleep``
    holds the wrapper; every module's globals are scanned (the standard
    library's too: the value is ours) so uninstalling leaves no wrapper behind.
    """
    by_id = {id(p.wrapper): p for p in patches if isinstance(p.owner, types.ModuleType)}
    if not by_id:
        return
    for module in list(sys.modules.values()):
        try:
            namespace = getattr(module, "__dict__", None)
        except Exception:  # lazy-module proxies in sys.modules may raise on access
            continue
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            found = by_id.get(id(value))
            if found is not None and value is found.wrapper:
                namespace[key] = found.original


#: Names whose third-party module is installed but not imported yet, each with the
#: ``unpatchable`` dict of every :func:`acquire` waiting for it (one entry per call).
_waiting: dict[str, list[dict[str, str]]] = {}


def _loaded_owner(name: str) -> tuple[Any, list[str]] | None:
    """Return the imported module holding ``name`` and the attribute path below it,
    or ``None`` while the module it needs has not been imported. Imports nothing.

    The longest prefix of ``name`` in :data:`sys.modules` is taken; when the next
    part is a submodule not imported yet (``sqlalchemy`` imported, ``sqlalchemy.orm``
    not), the name waits for it.
    """
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        rest = parts[cut:]
        if hasattr(module, rest[0]) or not hasattr(module, "__path__"):
            return module, rest
        try:
            submodule = importlib.util.find_spec(f"{module.__name__}.{rest[0]}")
        except (ImportError, ValueError):
            submodule = None
        return None if submodule is not None else (module, rest)
    return None


def _locate(name: str) -> tuple[Any, str, Any, bool] | str | None:
    """Resolve ``name`` as :func:`_resolve` does, importing only the standard library:
    ``None`` means a third-party module that is installed but not imported yet."""
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        return _resolve(name)
    if top not in sys.modules:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return f"module {top!r} is not installed"
        return None
    found = _loaded_owner(name)
    return None if found is None else _resolve_in(name, *found)


def _use(name: str, resolved: tuple[Any, str, Any, bool] | str, users: int) -> _Patch | str:
    """Patch ``name`` (or reuse its patch) for ``users`` more users; must hold ``_lock``.

    :return: the patch, new when its ``users`` was 0 (its aliases still to be
        replaced), or the reason it cannot be made.
    """
    patch = _patches.get(name)
    if patch is None:
        made = _patch_one(name, resolved)
        if isinstance(made, str):
            return made
        patch = _patches[name] = made
    patch.users += users
    return patch


def _on_import(modname: str) -> None:
    """Patch the waiting names that ``modname``, just imported, makes resolvable."""
    with _lock:
        prefix = modname + "."
        fresh: list[_Patch] = []
        for name in [n for n in _waiting if n.startswith(prefix)]:
            found = _loaded_owner(name)
            if found is None:
                continue  # it needs a submodule not imported yet
            waiters = _waiting.pop(name)
            made = _use(name, _resolve_in(name, *found), len(waiters))
            if isinstance(made, str):
                for unpatchable in waiters:
                    unpatchable[name] = made
                logger.debug("not detectable at run time: %s (%s)", name, made)
            elif made.users == len(waiters):
                fresh.append(made)
        _patch_aliases(fresh)
        _update_finder()


#: Tells :func:`_on_import` about the imports of modules that names wait for.
_watch = ImportWatch(
    wants=lambda fullname: any(name.startswith(fullname + ".") for name in _waiting),
    imported=lambda modname: _on_import(modname),
)


def _update_finder() -> None:
    """Watch imports while names wait for their module, and stop once none does."""
    _watch.enable(bool(_waiting))


def acquire(names: Iterable[str], listener: Listener) -> dict[str, str]:
    """Patch ``names`` (or reuse existing patches) and register ``listener``.

    Names of third-party modules not imported yet are patched when they are
    imported (see the module docstring).

    :param names: canonical dotted names (``"time.sleep"``).
    :param listener: called as ``listener(names, caller_frame)`` for each
        call made on an event-loop thread.
    :return: the names that could not be patched, mapped to the reason; the
        same dict gains the names found unpatchable when their module is imported.
    """
    global _listeners
    # What wrapping needs, imported now rather than under _lock in _on_import.
    import asyncio.events  # noqa: F401
    import socket  # noqa: F401

    unpatchable: dict[str, str] = {}
    with _lock:
        fresh: list[_Patch] = []
        for name in dict.fromkeys(names):
            if name in _patches:
                _patches[name].users += 1
                continue
            resolved = _locate(name)
            if resolved is None:
                _waiting.setdefault(name, []).append(unpatchable)
                continue
            made = _use(name, resolved, 1)
            if isinstance(made, str):
                unpatchable[name] = made
            elif made.users == 1:
                fresh.append(made)
        _patch_aliases(fresh)
        _listeners = (*_listeners, listener)
        _update_finder()
    return unpatchable


def release(names: Iterable[str], listener: Listener, unpatchable: dict[str, str]) -> None:
    """Undo one :func:`acquire` with the same ``names`` and ``listener``.

    :param unpatchable: the dict that :func:`acquire` returned (it identifies the
        call among those still waiting for a module).
    """
    global _listeners
    removed: list[_Patch] = []
    with _lock:
        _listeners = tuple(item for item in _listeners if item is not listener)
        for name in dict.fromkeys(names):
            waiters = _waiting.get(name)
            if waiters is not None and any(w is unpatchable for w in waiters):
                waiters[:] = [w for w in waiters if w is not unpatchable]
                if not waiters:
                    del _waiting[name]
                continue
            patch = _patches.get(name)
            if patch is None:
                continue
            patch.users -= 1
            if patch.users <= 0:
                for alias in patch.names:
                    _patches.pop(alias, None)
                _locations.pop((id(patch.owner), patch.attr), None)
                _unpatch(patch)
                removed.append(patch)
        _restore_later_bindings(removed)
        _update_finder()


def patched_names() -> tuple[str, ...]:
    """Return the catalogued names currently wrapped in this process."""
    with _lock:
        return tuple(_patches)
