"""Build the optional C part of ``asgishift.bridge`` (everything else is in pyproject.toml).

``asgishift.bridge._cenviron`` builds the environ of the common request in C
(see ``src/asgishift/bridge/_cenviron.c``). It is optional: where no C compiler
is found the build goes on without it and the bridge uses its Python code,
which is also the definition the C code follows. ``ASGISHIFT_NO_EXTENSIONS=1``
skips it at build time, and turns it off at run time.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

extensions = []
if not os.environ.get("ASGISHIFT_NO_EXTENSIONS"):
    extensions.append(
        Extension(
            "asgishift.bridge._cenviron",
            ["src/asgishift/bridge/_cenviron.c"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
