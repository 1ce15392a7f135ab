# Type stub of the optional C extension built from _cenviron.c (see setup.py).
from collections.abc import Callable, Mapping
from typing import Any

def build_environ(scope: Mapping[str, Any], base: dict[str, Any], /) -> dict[str, Any]: ...
def configure(
    python_build_environ: Callable[[Mapping[str, Any], dict[str, Any]], dict[str, Any]],
    environ_key: Callable[[bytes], str],
    key_cache: dict[bytes, str],
    /,
) -> None: ...
