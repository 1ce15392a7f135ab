"""Find event-loop blockers while the app runs: the runtime companion of ``asgishift audit``.

* :class:`BlockingDetector` wraps the callables named by the audit catalogue
  (``time.sleep``, ``socket.create_connection``, ``builtins.open``,
  ``requests.get``...) and reports calls made on an event-loop thread.
* :class:`LoopLagMonitor` reports, with the loop thread's stack, any callback
  that holds the loop longer than a threshold in milliseconds.
* :class:`BlockingDetectorMiddleware` turns both on inside an ASGI app
  (``asgishift serve --detect-blocking``).

Everything logs at WARNING on the ``asgishift.runtime`` logger. Importing this
package patches nothing and imports only the standard library.
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
