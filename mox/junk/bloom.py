"""The bloom filter of the junk filter, as mox's junk/bloom.go: 4 MiB of bits, 10 hash
functions taken from one BLAKE2b-256 digest of the word (25 bits each). A word the filter has
not seen is only added here; from its second occurrence on it is counted in the database, which
keeps the one-off words (most of them) out of it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["Bloom"]

SIZE = 4 * 1024 * 1024  # bytes
K = 10
_BITS = 25  # 2**25 bits = 4 MiB
_MASK = (1 << _BITS) - 1


def _indices(word: str) -> list[int]:
    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=32).digest(), "big")
    return [(h >> (_BITS * i)) & _MASK for i in range(K)]


class Bloom:
    """`has(word)`, `add(word)`; `save()` writes the file (atomically) when changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.modified = False
        if path.exists():
            data = path.read_bytes()
            if len(data) != SIZE:
                raise ValueError(f"{path}: bloom filter has size {len(data)}, expected {SIZE}")
            self.bits = bytearray(data)
        else:
            self.bits = bytearray(SIZE)

    def has(self, word: str) -> bool:
        return all(self.bits[i >> 3] & (1 << (i & 7)) for i in _indices(word))

    def add(self, word: str) -> None:
        for i in _indices(word):
            self.bits[i >> 3] |= 1 << (i & 7)
        self.modified = True

    def save(self) -> None:
        if not self.modified:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(self.bits)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.modified = False
