"""Be told when chosen modules have just been imported: a post-import hook.

:class:`ImportWatch` puts a finder first on :data:`sys.meta_path` (PEP 451). It
finds no module itself: for a module its ``wants`` predicate picks, it asks the
other finders for the spec and gives it a loader that runs the module's own
loader, then calls ``imported(name)``, before the importer gets the module. The
module keeps its own loader (``__loader__`` and ``__spec__.loader`` are put back
before its code runs). Used by :mod:`asgishift.runtime._patching` to patch a
watched package when the application imports it instead of importing it at
install time.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import importlib.abc
    import importlib.machinery

__all__ = ["ImportWatch"]


class _NotifyingLoader:
    """Run a module's own loader, then tell the watch; the module keeps its loader."""

    def __init__(self, loader: importlib.abc.Loader, imported: Callable[[str], None]) -> None:
        self._loader = loader
        self._imported = imported

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        """Let the module's own loader create it (PEP 451)."""
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        """Put the module's own loader back on it, run its code, then report it."""
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._imported(module.__name__)


class ImportWatch:
    """Call ``imported(name)`` right after a module that ``wants(name)`` picks is imported.

    :param wants: called with each module name being imported (a dotted name such
        as ``"sqlalchemy.orm"``) while the watch is enabled; must be cheap.
    :param imported: called with the name once the module's code has run without
        raising, in the importing thread, under the module's import lock; it must
        not import modules that may be being imported by another thread.
    """

    def __init__(self, wants: Callable[[str], bool], imported: Callable[[str], None]) -> None:
        self._wants = wants
        self._imported = imported
        self._lock = threading.Lock()

    def enable(self, on: bool) -> None:
        """Put this watch first on :data:`sys.meta_path` (``on``) or take it off; idempotent."""
        with self._lock:
            present = self in sys.meta_path
            if on and not present:
                sys.meta_path.insert(0, self)
            elif not on and present:
                sys.meta_path.remove(self)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Return the spec the other finders give ``fullname``, with a notifying loader,
        when ``wants(fullname)``; ``None`` otherwise (PEP 451 ``MetaPathFinder``)."""
        if not self._wants(fullname):
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            spec.loader = cast("importlib.abc.Loader", _NotifyingLoader(loader, self._imported))
        return spec
