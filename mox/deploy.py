"""`mox deploy`: push a checked config and its key files to one host over SSH (asyncssh).

The steps, each stopping the deploy when it fails, so the host keeps its running config:
1. validate the config locally (`load_config`, the same checks as `mox config check`);
2. connect, and compare the config and every file it names by a relative path (DKIM keys, TLS
   certificates and keys, DANE host keys, password files) with what the host has; print the diff
   (the config as a unified diff, secrets only as "changed");
3. with `dry_run`, stop here: nothing on the host changed;
4. upload everything into a staging directory beside the live config, with the same layout, and run
   `mox config check` on the host against the staged config;
5. swap: rename each staged file over the live one (a rename within one directory is atomic, so a
   reader sees the old file or the new one, never half of one), the config last, so it never names
   a key that is not there yet; existing files keep their owner and mode;
6. run the reload command (default: restart the systemd unit);
7. with a resolver, run `mox dnscheck` on the host and report its result.

Files named by absolute paths are expected to exist on the host already; the host's
`mox config check` says so when they do not.
"""

from __future__ import annotations

import asyncio
import difflib
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import asyncssh

from mox.config.load import LoadedConfig, load_config

__all__ = [
    "Change",
    "DeployError",
    "DeployOptions",
    "DeployReport",
    "PushFile",
    "deploy",
    "files_to_push",
]

DEFAULT_RELOAD = "systemctl restart mox.service"


class DeployError(Exception):
    """A deploy step failed; the message says which, and what the host answered."""


@dataclass(frozen=True, slots=True)
class PushFile:
    """A local file and where it goes, relative to the remote config directory."""

    local: Path
    remote: PurePosixPath
    secret: bool


@dataclass(frozen=True, slots=True)
class Change:
    """What a deploy does to one remote file."""

    remote: PurePosixPath
    kind: Literal["new", "changed", "same"]
    diff: str = ""


@dataclass(slots=True)
class DeployOptions:
    host: str
    port: int = 22
    username: str | None = None
    client_keys: list[Path] | None = None  # None: the SSH agent and ~/.ssh defaults
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts
    remote_dir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/etc/mox"))
    remote_mox: str = "mox"
    reload_command: str = DEFAULT_RELOAD
    resolver: str | None = None
    dry_run: bool = False
    timeout: float = 60.0


@dataclass(slots=True)
class DeployReport:
    changes: list[Change] = field(default_factory=list)
    swapped: bool = False
    reloaded: bool = False
    dnscheck_status: int | None = None
    dnscheck_output: str = ""

    @property
    def changed(self) -> bool:
        return any(c.kind != "same" for c in self.changes)


def _relative(loaded: LoadedConfig, path: Path, where: str) -> PurePosixPath | None:
    """The remote path of a file the config names, or None when it is absolute (host's own)."""
    if path.is_absolute():
        return None
    rel = PurePosixPath(path.as_posix())
    if ".." in rel.parts:
        raise DeployError(f"{loaded.path}: {where}: {path} leaves the config directory")
    return rel


def files_to_push(loaded: LoadedConfig) -> list[PushFile]:
    """The config file and every file it names by a relative path; the config comes last."""
    cfg = loaded.config
    named: list[tuple[str, Path | None]] = [("admin_password_file", cfg.admin_password_file)]
    for aname, provider in cfg.acme.items():
        named.append((f"acme.{aname}.ca_file", provider.ca_file))
    for lname, listener in cfg.listeners.items():
        if listener.tls is not None:
            where = f"listeners.{lname}.tls"
            named.append((f"{where}.cert_file", listener.tls.cert_file))
            named.append((f"{where}.key_file", listener.tls.key_file))
            for i, key in enumerate(listener.tls.host_private_key_files):
                named.append((f"{where}.host_private_key_files[{i}]", key))
    for aname, account in cfg.accounts.items():
        named.append((f"accounts.{aname}.password_file", account.password_file))
    for dname, dom in cfg.domains.items():
        for sel_name, sel in dom.dkim.selectors.items():
            named.append(
                (
                    f"domains.{dname}.dkim.selectors.{sel_name}.private_key_file",
                    sel.private_key_file,
                )
            )
    out: dict[PurePosixPath, PushFile] = {}
    for where, path in named:
        if path is None:
            continue
        rel = _relative(loaded, path, where)
        if rel is not None and rel not in out:
            # Everything but a certificate chain is secret: keys and password secrets.
            secret = not where.endswith(("cert_file", "ca_file"))
            out[rel] = PushFile(loaded.resolve(path), rel, secret)
    config = PurePosixPath(loaded.path.name)
    return [*sorted(out.values(), key=lambda f: f.remote), PushFile(loaded.path, config, False)]


def describe_change(push: PushFile, old: bytes | None, new: bytes) -> Change:
    if old == new:
        return Change(push.remote, "same")
    kind: Literal["new", "changed"] = "new" if old is None else "changed"
    if push.secret:
        return Change(push.remote, kind, f"{push.remote}: {kind} (secret, contents not shown)\n")
    try:
        old_lines = (old or b"").decode().splitlines(keepends=True)
        new_lines = new.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return Change(push.remote, kind, f"{push.remote}: {kind} (binary)\n")
    before = "/dev/null" if old is None else f"a/{push.remote}"
    text = "".join(difflib.unified_diff(old_lines, new_lines, before, f"b/{push.remote}"))
    if text and not text.endswith("\n"):
        text += "\n"
    return Change(push.remote, kind, text)


async def _read_remote(sftp: asyncssh.SFTPClient, path: PurePosixPath) -> bytes | None:
    try:
        async with sftp.open(str(path), "rb", encoding=None) as f:
            data: bytes | str = await f.read()
    except asyncssh.SFTPNoSuchFile:
        return None
    return data.encode() if isinstance(data, str) else data


async def _run(
    conn: asyncssh.SSHClientConnection, command: str, limit: float
) -> asyncssh.SSHCompletedProcess:
    try:
        return await asyncio.wait_for(conn.run(command, check=False), limit)
    except TimeoutError:
        raise DeployError(f"no answer after {limit:g} s from: {command}") from None


def _output(result: asyncssh.SSHCompletedProcess) -> str:
    parts = []
    for stream in (result.stdout, result.stderr):
        text = stream.decode(errors="replace") if isinstance(stream, bytes) else stream or ""
        if text:
            parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


async def _swap(
    sftp: asyncssh.SFTPClient,
    staging: PurePosixPath,
    remote_dir: PurePosixPath,
    changes: list[Change],
) -> None:
    """Rename each changed staged file over the live one; the config is last in `changes`."""
    dir_attrs = await sftp.stat(str(remote_dir))
    for change in changes:
        if change.kind == "same":
            continue
        src, dst = staging / change.remote, remote_dir / change.remote
        if change.kind == "changed":
            attrs = await sftp.stat(str(dst))
            mode, uid, gid = (attrs.permissions or 0o640) & 0o7777, attrs.uid, attrs.gid
        else:
            # New files: owner the deploying user, the directory's group (the service's), 0640.
            await sftp.makedirs(str(dst.parent), exist_ok=True)
            mode, uid, gid = 0o640, None, dir_attrs.gid
        await sftp.chmod(str(src), mode)
        owner = uid if uid is not None else (await sftp.stat(str(src))).uid
        if owner is not None and gid is not None:
            try:
                await sftp.chown(str(src), owner, gid)
            except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure):
                pass  # not root on the host: the file stays the deploying user's
        await sftp.posix_rename(str(src), str(dst))  # atomic replace (rename(2))


async def deploy(
    config: Path, options: DeployOptions, out: Callable[[str], None] = print
) -> DeployReport:
    """Deploy `config` to `options.host`; raises ConfigError (local check) or DeployError."""
    loaded = load_config(config)
    out(f"{config}: ok (checked locally)")
    pushes = files_to_push(loaded)
    report = DeployReport()
    opt = options
    remote_dir = opt.remote_dir
    remote_config = remote_dir / pushes[-1].remote
    mox = opt.remote_mox
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                opt.host,
                port=opt.port,
                username=opt.username,
                client_keys=[str(k) for k in opt.client_keys] if opt.client_keys else (),
                known_hosts=str(opt.known_hosts) if opt.known_hosts else (),
                connect_timeout=opt.timeout,
            ),
            opt.timeout,
        )
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise DeployError(f"cannot connect to {opt.host}:{opt.port}: {exc}") from None
    async with conn:
        sftp = await conn.start_sftp_client()
        async with sftp:
            contents: dict[PurePosixPath, bytes] = {}
            for push in pushes:
                new = push.local.read_bytes()
                contents[push.remote] = new
                old = await _read_remote(sftp, remote_dir / push.remote)
                change = describe_change(push, old, new)
                report.changes.append(change)
                if change.diff:
                    out(change.diff.rstrip("\n"))
            if not report.changed:
                out(f"{opt.host}: {remote_config} and its files are up to date")
            elif opt.dry_run:
                out(f"{opt.host}: dry run, nothing changed")
                return report
            if report.changed:
                await _stage_check_swap(conn, sftp, opt, contents, report)
                result = await _run(conn, opt.reload_command, opt.timeout)
                if result.exit_status != 0:
                    raise DeployError(
                        f"{opt.host}: config swapped, but the reload command failed "
                        f"(exit {result.exit_status}): {opt.reload_command}\n{_output(result)}"
                    )
                report.reloaded = True
                out(f"{opt.host}: reloaded ({opt.reload_command})")
            if opt.resolver is not None and not opt.dry_run:
                cmd = (
                    f"{mox} dnscheck --config {shlex.quote(str(remote_config))} "
                    f"--resolver {shlex.quote(opt.resolver)}"
                )
                result = await _run(conn, cmd, opt.timeout)
                report.dnscheck_status = result.exit_status
                report.dnscheck_output = _output(result)
                verdict = {0: "no errors", 1: "errors found", 2: "could not check"}.get(
                    result.exit_status or 0, f"exit {result.exit_status}"
                )
                out(f"{opt.host}: mox dnscheck: {verdict}")
                out(report.dnscheck_output.rstrip("\n"))
    return report


async def _stage_check_swap(
    conn: asyncssh.SSHClientConnection,
    sftp: asyncssh.SFTPClient,
    opt: DeployOptions,
    contents: dict[PurePosixPath, bytes],
    report: DeployReport,
) -> None:
    """Upload all files into a staging directory, check the staged config there, swap."""
    remote_dir = opt.remote_dir
    staging = remote_dir / f".deploy-{secrets.token_hex(6)}"
    config_rel = report.changes[-1].remote
    try:
        await sftp.makedirs(str(remote_dir), exist_ok=True)
        await sftp.mkdir(str(staging), asyncssh.SFTPAttrs(permissions=0o700))
        for rel, data in contents.items():
            await sftp.makedirs(str((staging / rel).parent), exist_ok=True)
            async with sftp.open(
                str(staging / rel), "wb", asyncssh.SFTPAttrs(permissions=0o600)
            ) as f:
                await f.write(data)
        check = f"{opt.remote_mox} config check {shlex.quote(str(staging / config_rel))}"
        result = await _run(conn, check, opt.timeout)
        if result.exit_status != 0:
            shown = _output(result).replace(str(staging), str(remote_dir))
            raise DeployError(
                f"{opt.host}: the config does not pass `mox config check` on the host; "
                f"nothing was changed:\n{shown}"
            )
        await _swap(sftp, staging, remote_dir, report.changes)
        report.swapped = True
    except (OSError, asyncssh.SFTPError) as exc:
        raise DeployError(f"{opt.host}: upload or swap failed: {exc}") from None
    finally:
        try:
            await sftp.rmtree(str(staging))
        except (OSError, asyncssh.SFTPError):
            pass  # best effort: a leftover .deploy-* directory is harmless
