"""Find event-loop blockers while the app runs: the runtime companion of ``asgishift audit``.

* :class:`BlockingDetector` wraps the callables named by the audit catalogue
  (``time.sleep``, ``socket.create_connection``, ``builtins.open``,
  ``requests.get``...) and reports calls made on an event-loop thread as
  :class:`BlockingCall` events, with the rule code and the caller's stack.
* :class:`LoopLagMonitor` reports, with the loop thread's stack, any callback
  that holds one loop longer than a threshold in milliseconds
  (:class:`LoopLag` events); :class:`EveryLoopLagMonitor` does it for every
  asyncio loop of the process.
* :class:`BlockingDetectorMiddleware` turns both on inside an ASGI app
  (``asgishift serve --detect-blocking --loop-lag-ms N``).
* :mod:`asgishift.pytest_plugin` does it for a test suite
  (``pytest --asgishift-detect-blocking``).

Everything logs at WARNING on the ``asgishift.runtime`` logger. Importing this
package patches nothing and imports only the standard library. What cannot be
detected at run time, and why, is listed in ``README.md`` beside this file.
"""

from __future__ import annotations

from asgishift.runtime._detector import BlockingDetector, default_rules
from asgishift.runtime._events import BlockingCall, BlockingCallError, LoopLag
from asgishift.runtime._lag import EveryLoopLagMonitor, LoopLagMonitor
from asgishift.runtime._middleware import BlockingDetectorMiddleware

__all__ = [
    "BlockingCall",
    "BlockingCallError",
    "BlockingDetector",
    "BlockingDetectorMiddleware",
    "EveryLoopLagMonitor",
    "LoopLag",
    "LoopLagMonitor",
    "default_rules",
]

# Reprs and docs name the public module, not the private one.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
