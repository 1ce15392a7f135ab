# Type stub of the optional C extension built from _cresponse.c (see setup.py).
from collections.abc import Callable

_Start = tuple[int, list[tuple[bytes, bytes]], bool, int | None]

def encode_start(status: object, headers: object, method: str, /) -> _Start: ...
def configure(
    python_encode_start: Callable[[object, object, str], _Start],
    status_cache: dict[str, int],
    pair_cache: dict[tuple[str, str], tuple[bytes, bytes]],
    /,
) -> None: ...
