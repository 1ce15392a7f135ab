"""Deterministic payloads shared by the bridge test app and the live tests.

Both sides generate the same bytes from a size alone, so a 64 MiB transfer
can be checked with a SHA-256 without ever holding it in memory. Every
64 KiB block starts with its own index, so reordered or repeated blocks
change the digest. No third-party imports: the test process imports this
module without importing the bridge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

#: Size of one generated block in bytes.
BLOCK_SIZE = 65536

# One random-looking 64 KiB block; each yielded block overwrites its first
# eight bytes with the block index.
_BASE = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(BLOCK_SIZE // 32))


def iter_payload(size: int, block_size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Yield ``size`` bytes of the test payload in blocks of ``block_size`` bytes.

    :param size: total length in bytes.
    :param block_size: length of each block but the last, at most
        :data:`BLOCK_SIZE` bytes.
    """
    sent = 0
    index = 0
    while sent < size:
        block = bytearray(_BASE[:block_size])
        block[:8] = index.to_bytes(8, "big")
        chunk = bytes(block[: size - sent])
        sent += len(chunk)
        index += 1
        yield chunk


def payload_sha256(size: int) -> str:
    """Return the hex SHA-256 of the first ``size`` bytes of the test payload."""
    digest = hashlib.sha256()
    for chunk in iter_payload(size):
        digest.update(chunk)
    return digest.hexdigest()
