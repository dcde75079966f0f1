"""TLS channel bindings for SCRAM-*-PLUS: tls-exporter (RFC 9266) and tls-unique (RFC 5929).

Python's ssl module has no keying-material exporter (RFC 5705; CPython issue gh-82133), so for
tls-exporter we call OpenSSL's `SSL_export_keying_material` through ctypes on the `SSL*` of the
connection. The pointer is read from the `_ssl._SSLSocket` object (CPython's PySSLSocket: object
header, then the socket weakref, then `SSL *ssl`) and only used after checking, through OpenSSL
itself, that it is the same connection (same protocol version and cipher as the ssl module
reports). When any check fails we offer no tls-exporter binding, and -PLUS then uses tls-unique
(TLS 1.2) or is not offered at all: never a wrong binding.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["channel_bindings"]

log = logging.getLogger(__name__)

EXPORTER_LABEL = b"EXPORTER-Channel-Binding"  # RFC 9266 §2
EXPORTER_LENGTH = 32  # RFC 9266 §2


@cache
def _libssl() -> Any:
    """The libssl that the ssl module uses (already loaded into this process), or None."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if "libssl.so" in line}
    if len(paths) != 1:
        return None
    lib = ctypes.CDLL(paths.pop())
    lib.SSL_get_version.restype = ctypes.c_char_p
    lib.SSL_get_version.argtypes = [ctypes.c_void_p]
    lib.SSL_get_current_cipher.restype = ctypes.c_void_p
    lib.SSL_get_current_cipher.argtypes = [ctypes.c_void_p]
    lib.SSL_CIPHER_get_name.restype = ctypes.c_char_p
    lib.SSL_CIPHER_get_name.argtypes = [ctypes.c_void_p]
    lib.SSL_export_keying_material.restype = ctypes.c_int
    lib.SSL_export_keying_material.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_int,
    ]
    return lib


def _ssl_pointer(obj: ssl.SSLObject | ssl.SSLSocket, lib: Any) -> int | None:
    inner = getattr(obj, "_sslobj", None)
    if inner is None or sys.implementation.name != "cpython":
        return None
    ptr_size = ctypes.sizeof(ctypes.c_void_p)
    # PySSLSocket: PyObject_HEAD (refcount + type), PyObject *Socket, SSL *ssl.
    offset = 2 * ptr_size + ptr_size
    if sys.getsizeof(inner) < offset + ptr_size:
        return None
    ptr = ctypes.c_void_p.from_address(id(inner) + offset).value
    if not ptr:
        return None
    version = lib.SSL_get_version(ptr)
    cipher = lib.SSL_get_current_cipher(ptr)
    name = lib.SSL_CIPHER_get_name(cipher) if cipher else None
    info = obj.cipher()
    if version is None or name is None or info is None:
        return None
    if version.decode() != obj.version() or name.decode() != info[0]:
        return None
    return int(ptr)


def tls_exporter(obj: ssl.SSLObject | ssl.SSLSocket) -> bytes | None:
    """The RFC 9266 tls-exporter value of a TLS 1.3 connection, or None if unavailable."""
    if obj.version() != "TLSv1.3":  # RFC 9266 §3: TLS 1.2 needs extended master secret
        return None
    lib = _libssl()
    if lib is None:
        return None
    ptr = _ssl_pointer(obj, lib)
    if ptr is None:
        log.info("tls-exporter channel binding unavailable")
        return None
    out = ctypes.create_string_buffer(EXPORTER_LENGTH)
    # RFC 9266 §2: label "EXPORTER-Channel-Binding", empty context, 32 bytes.
    rc = lib.SSL_export_keying_material(
        ptr, out, EXPORTER_LENGTH, EXPORTER_LABEL, len(EXPORTER_LABEL), b"", 0, 1
    )
    return out.raw if rc == 1 else None


def channel_bindings(obj: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, bytes]:
    """Channel-binding types and data this TLS connection offers (none without TLS)."""
    if obj is None:
        return {}
    out: dict[str, bytes] = {}
    exporter = tls_exporter(obj)
    if exporter is not None:
        out["tls-exporter"] = exporter
    if obj.version() != "TLSv1.3":
        unique = obj.get_channel_binding("tls-unique")  # RFC 5929 §3, only sound before 1.3
        if unique:
            out["tls-unique"] = unique
    return out
