"""A real mox server (all listeners of a config) on loopback, run in a thread for sync clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import tomlkit
import trustme

from mox.auth.password import derive_credentials
from mox.config.load import LoadedConfig, load_config
from mox.dns.resolver import MockResolver, Resolver
from mox.server.run import RunningServer, start_all
from tests.conftest import free_port, minimal_config

T = TypeVar("T")

PASSWORD = "test-password-1"


def mock_world() -> MockResolver:
    """DNS for SMTP tests that are not about mail authentication: the sender domains exist
    (as the MAIL FROM check wants) and publish no SPF, DKIM or DMARC records, so results are
    "none", and the server never asks a real resolver."""
    return MockResolver(
        {
            ("example.org", "A"): ["192.0.2.10"],
            ("example.test", "MX"): ["10 mail.example.test."],
            ("other.test", "MX"): ["10 mail.example.test."],
            ("mail.example.test", "A"): ["127.0.0.1"],
            ("1.0.0.127.in-addr.arpa", "PTR"): ["mail.example.test."],
        }
    )


class ServerThread:
    """`start()`, then `call(coro)` runs code on the server's loop; `stop()` at the end.

    `resolver` answers the server's DNS questions; by default `mock_world()` (localserve asks
    none: it answers from its config)."""

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        localserve: bool = False,
        unknown_delay: float = 0.2,
        resolver: Resolver | None = None,
    ) -> None:
        self.loaded = loaded
        self.localserve = localserve
        self.resolver = resolver if resolver is not None or localserve else mock_world()
        self.unknown_delay = unknown_delay
        self.loop = asyncio.new_event_loop()
        self.running: RunningServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.running = self.loop.run_until_complete(
                start_all(
                    self.loaded,
                    localserve=self.localserve,
                    unknown_recipient_delay=self.unknown_delay,
                    resolver=self.resolver,
                )
            )
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.running is not None:
            self.call(self.running.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


def tls_files(directory: Path, ca: trustme.CA) -> tuple[Path, Path]:
    cert = ca.issue_cert(
        "localhost",
        "127.0.0.1",
        "mail.example.test",
        "mta-sts.example.test",
        "autoconfig.example.test",
        "mta-sts.other.test",
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    return cert_file, key_file


def full_config(
    directory: Path, ca: trustme.CA, tweak: Callable[[dict[str, Any]], None] | None = None
) -> tuple[Path, dict[str, int]]:
    """A config with every SMTP and IMAP service on free loopback ports, TLS from a test CA;
    `tweak` may change the config data before it is written."""
    cert_file, key_file = tls_files(directory, ca)
    ports = {k: free_port() for k in ("smtp", "submission", "submissions", "imap", "imaps")}
    data = minimal_config()
    data["domains"]["other.test"] = {}
    data["accounts"]["bob"] = {
        "domain": "other.test",
        "destinations": {"bob@other.test": {"mailbox": "Lists/Bob"}},
    }
    data["listeners"] = {
        "test": {
            "ips": ["127.0.0.1"],
            "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
            **{k: {"enabled": True, "port": p} for k, p in ports.items()},
        }
    }
    if tweak is not None:
        tweak(data)
    path = directory / "mox.toml"
    path.write_text(tomlkit.dumps(data))
    return path, ports


def start_server(
    directory: Path,
    ca: trustme.CA,
    tweak: Callable[[dict[str, Any]], None] | None = None,
    *,
    localserve: bool = False,
    resolver: Resolver | None = None,
) -> tuple[ServerThread, dict[str, int]]:
    path, ports = full_config(directory, ca, tweak)
    server = ServerThread(load_config(path), localserve=localserve, resolver=resolver).start()
    assert server.running is not None
    for account in ("alice", "bob"):
        server.call(
            server.running.store.account(account).set_credentials(derive_credentials(PASSWORD))
        )
    return server, ports
