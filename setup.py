"""Build the optional C parts of ``asgishift.bridge`` (everything else is in pyproject.toml).

Each is the common case of one pure Python function, in C, handing every other
case to that function, which stays the definition (``src/asgishift/bridge/_accel.py``):
``_cenviron`` builds the environ of the common request, ``_cresponse`` encodes
the common response start, ``_cscope`` builds the scope of ``ASGIToWSGI``'s
common request. They are optional: where no C compiler is found the
build goes on without them and the bridge runs its Python code.
``ASGISHIFT_NO_EXTENSIONS=1`` skips them at build time, and turns them off at run time.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

extensions = []
if not os.environ.get("ASGISHIFT_NO_EXTENSIONS"):
    extensions = [
        Extension(
            f"asgishift.bridge.{name}",
            [f"src/asgishift/bridge/{name}.c"],
            depends=["src/asgishift/bridge/_cintern.h"],
            optional=True,
        )
        for name in ("_cenviron", "_cresponse", "_cscope")
    ]

setup(ext_modules=extensions)
