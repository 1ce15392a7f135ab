# Type stub of the optional C extension built from _cscope.c (see setup.py).
from collections.abc import Callable, Mapping
from typing import Any

def build_scope(
    environ: Mapping[str, Any],
    *,
    state: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]: ...
def configure(
    python_build_scope: Callable[..., dict[str, Any]],
    name_cache: dict[str, bytes | None],
    address_cache: dict[tuple[Any, Any], tuple[str, int | None]],
    http_versions: dict[str, str],
    asgi_version: dict[str, str],
    /,
) -> None: ...
