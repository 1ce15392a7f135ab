"""Resolve catalogue names to attributes and swap call wrappers in, process-wide.

Strategy: one wrapper per catalogued name, shared by every installed
:class:`~asgishift.runtime.BlockingDetector` and reference-counted, so two
detectors (the pytest fixture and the ``--asgishift-detect-blocking`` flag, or
a middleware and a test) can be installed at once and the original is put back
only when the last one uninstalls. A wrapper costs one C call
(``asyncio.events._get_running_loop``) when no loop runs on the calling thread;
everything else happens only on an event-loop thread.

What can be patched (and why some names cannot):

* module attributes (``time.sleep``, ``socket.create_connection``,
  ``builtins.open``, ``os.system``, ``sqlite3.connect``, ``requests.get``): the
  module's attribute is replaced. Names bound before installation with
  ``from time import sleep as snooze`` are found by scanning the globals of
  every imported non-standard-library module and replaced too; names bound
  later pick up the wrapper. Other copies (default arguments, closures,
  instance or class attributes, standard-library internals) keep the original.
* methods of Python classes (``pathlib.Path.read_text``,
  ``subprocess.Popen.communicate``, ``socket.socket.connect`` through the
  Python subclass ``socket.socket``): set on that class, so subclasses inherit
  the wrapper unless they override the method. A class name (``subprocess.Popen``)
  wraps its ``__init__`` so the class keeps its identity.
* NOT methods of built-in (C) types such as ``threading.Lock.acquire``
  (``_thread.lock`` is immutable), ``str``/``bytes`` methods or
  ``io.TextIOWrapper.read``: CPython refuses ``setattr`` on those types, and
  ``threading.Lock`` itself is a factory function on Python < 3.13. They are
  reported in :attr:`BlockingDetector.unpatchable` with the reason.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import sys
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("asgishift.runtime")

#: ``listener(name, caller_frame)``: called on an event-loop thread before the
#: original runs; may raise to refuse the call.
Listener = Callable[[str, types.FrameType], None]

#: Modules whose own calls are the event loop's business (asyncio starts
#: subprocesses and reads pipes on the loop thread by design).
_EXEMPT_CALLERS = ("asyncio", "uvloop")

_lock = threading.RLock()
_tls = threading.local()
_listeners: tuple[Listener, ...] = ()


@dataclass
class _Patch:
    """One swapped attribute and everything needed to put the original back."""

    name: str
    owner: Any
    attr: str
    had_own: bool
    raw: Any
    wrapper_raw: Any
    original: Callable[..., Any]
    wrapper: Callable[..., Any]
    aliases: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    users: int = 0


_patches: dict[str, _Patch] = {}


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
    owner, rest = found
    for depth, part in enumerate(rest[:-1]):
        try:
            owner = getattr(owner, part)
        except AttributeError:
            return f"{'.'.join([*name.split('.')[: -len(rest)], *rest[: depth + 1]])} not found"
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


def _nonblocking_socket(args: tuple[Any, ...]) -> bool:
    """Tell whether a ``socket.socket`` method is called on a non-blocking socket.

    asyncio's selector loop calls ``recv``/``send``/``connect`` on the loop
    thread on sockets with a timeout of ``0.0``; those never block.
    """
    import socket

    return bool(args) and isinstance(args[0], socket.socket) and args[0].gettimeout() == 0.0


def _dispatch(name: str, frame: types.FrameType) -> None:
    """Tell every listener; re-raise the first error after all have seen the call."""
    error: BaseException | None = None
    for listener in _listeners:
        try:
            listener(name, frame)
        except Exception as exc:
            error = error or exc
    if error is not None:
        raise error


def _make_wrapper(
    name: str, func: Callable[..., Any], skip: Callable[[tuple[Any, ...]], bool] | None
) -> Callable[..., Any]:
    """Build the function that replaces ``func``; see the module docstring."""
    from asyncio.events import _get_running_loop

    tls = _tls
    getframe = sys._getframe

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Fast path: not on an event-loop thread, or already inside a reported
        # call (subprocess.run -> Popen, or our own logging opening a file).
        if _get_running_loop() is None or getattr(tls, "busy", False):
            return func(*args, **kwargs)
        if skip is not None and skip(args):
            return func(*args, **kwargs)
        frame = getframe(1)
        if frame.f_globals.get("__name__", "").partition(".")[0] in _EXEMPT_CALLERS:
            return func(*args, **kwargs)
        tls.busy = True
        try:
            _dispatch(name, frame)
            return func(*args, **kwargs)
        finally:
            tls.busy = False

    functools.update_wrapper(wrapper, func)
    wrapper.__asgishift_blocking__ = name  # type: ignore[attr-defined]
    return wrapper


def _wrap_raw(name: str, owner: Any, raw: Any) -> tuple[Any, Callable[..., Any], Any] | str:
    """Wrap the stored value ``raw``, keeping ``staticmethod``/``classmethod``.

    :return: ``(wrapper as stored, wrapper function, original function)`` or a
        reason string.
    """
    import socket

    skip = (
        _nonblocking_socket if isinstance(owner, type) and issubclass(owner, socket.socket) else None
    )
    if isinstance(raw, (staticmethod, classmethod)):
        func = raw.__func__
        wrapper = _make_wrapper(name, func, skip)
        return type(raw)(wrapper), wrapper, func
    if not callable(raw) or isinstance(raw, type):
        return f"{name} is a {type(raw).__name__}, not a function"
    wrapper = _make_wrapper(name, raw, skip)
    return wrapper, wrapper, raw


def _patch_one(name: str) -> _Patch | str:
    resolved = _resolve(name)
    if isinstance(resolved, str):
        return resolved
    owner, attr, raw, had_own = resolved
    wrapped = _wrap_raw(name, owner, raw)
    if isinstance(wrapped, str):
        return wrapped
    wrapper_raw, wrapper, original = wrapped
    try:
        setattr(owner, attr, wrapper_raw)
    except (TypeError, AttributeError) as exc:
        return (
            f"{getattr(owner, '__qualname__', owner)} is a built-in type whose attributes "
            f"cannot be replaced ({exc}); this call is found by `asgishift audit` only"
        )
    return _Patch(name, owner, attr, had_own, raw, wrapper_raw, original, wrapper)


def _patch_aliases(patches: Iterable[_Patch]) -> None:
    """Replace names bound to an original before installation, in one pass.

    Only module-level callables are searched for, only in the globals of
    non-standard-library modules: standard-library internals that keep a
    private copy (``tokenize._builtin_open``) are the interpreter's business.
    """
    by_id = {id(p.original): p for p in patches if isinstance(p.owner, types.ModuleType)}
    if not by_id:
        return
    stdlib = sys.stdlib_module_names
    for modname, module in list(sys.modules.items()):
        top = modname.partition(".")[0]
        if module is None or top in stdlib or modname.startswith("asgishift.runtime"):
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            patch = by_id.get(id(value))
            if patch is not None and value is patch.original and module is not patch.owner:
                namespace[key] = patch.wrapper
                patch.aliases.append((namespace, key))


def _unpatch(patch: _Patch) -> None:
    for namespace, key in patch.aliases:
        if namespace.get(key) is patch.wrapper:
            namespace[key] = patch.original
    current = vars(patch.owner).get(patch.attr)
    if current is not patch.wrapper_raw:
        logger.warning(
            "%s was replaced by someone else after asgishift patched it; leaving %r in place",
            patch.name,
            current,
        )
        return
    if patch.had_own:
        setattr(patch.owner, patch.attr, patch.raw)
    else:
        delattr(patch.owner, patch.attr)


def acquire(names: Iterable[str], listener: Listener) -> dict[str, str]:
    """Patch ``names`` (or reuse existing patches) and register ``listener``.

    :return: the names that could not be patched, mapped to the reason.
    """
    global _listeners
    unpatchable: dict[str, str] = {}
    with _lock:
        fresh: list[_Patch] = []
        for name in dict.fromkeys(names):
            patch = _patches.get(name)
            if patch is None:
                made = _patch_one(name)
                if isinstance(made, str):
                    unpatchable[name] = made
                    continue
                patch = _patches[name] = made
                fresh.append(patch)
            patch.users += 1
        _patch_aliases(fresh)
        _listeners = (*_listeners, listener)
    return unpatchable


def release(names: Iterable[str], listener: Listener) -> None:
    """Undo one :func:`acquire`: unregister ``listener`` and drop unused patches."""
    global _listeners
    with _lock:
        _listeners = tuple(item for item in _listeners if item is not listener)
        for name in dict.fromkeys(names):
            patch = _patches.get(name)
            if patch is None:
                continue
            patch.users -= 1
            if patch.users <= 0:
                del _patches[name]
                _unpatch(patch)


def patched_names() -> tuple[str, ...]:
    """Return the catalogued names currently wrapped in this process."""
    with _lock:
        return tuple(_patches)
