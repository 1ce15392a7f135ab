"""Whether the bridge may use its optional C extensions (``setup.py`` builds them).

Each C extension (``_cenviron.c``, ``_cresponse.c``) is a shortcut for the common
case of one pure Python function, which stays the definition and takes every
other case. They are compiled at install time where a C compiler is found.
Setting the environment variable ``ASGISHIFT_NO_EXTENSIONS`` to a non-empty
value skips the build and, read once at import, turns them off at run time.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["EXTENSIONS"]

#: ``False`` when ``ASGISHIFT_NO_EXTENSIONS`` is set: use the Python code only.
EXTENSIONS: Final = not os.environ.get("ASGISHIFT_NO_EXTENSIONS")
