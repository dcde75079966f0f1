"""Developer and CI sessions; CI runs `nox -s lint typecheck schema tests` (via ./run test)."""

from __future__ import annotations

import os
import re

import nox

nox.options.default_venv_backend = "uv"
# Byte-compile at install, as pip does: third-party modules then are not compiled at first import
# under the tests' warnings-as-errors.
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "schema", "tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str) -> None:
    session.install("-e", ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, integration tests included (Debian parts: scripts/system_deps.py)."""
    session.run("python", "scripts/system_deps.py", "--install", external=True)
    install(session, "test", "deploy")  # deploy: ansible-core, ansible-lint (tests/deploy)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and this file."""
    install(session, "typecheck")
    session.run("mypy")


@nox.session
def schema(session: nox.Session) -> None:
    """Fail when schemas/mox.schema.json differs from `mox config schema` (fix: -- --fix)."""
    install(session)
    out = session.run("mox", "config", "schema", silent=True)
    assert isinstance(out, str)
    with open("schemas/mox.schema.json", encoding="utf-8") as f:
        committed = f.read()
    if out != committed:
        if "--fix" in session.posargs:
            with open("schemas/mox.schema.json", "w", encoding="utf-8") as f:
                f.write(out)
            session.log("schemas/mox.schema.json regenerated")
            return
        session.error("schemas/mox.schema.json is stale: run `nox -s schema -- --fix`")


@nox.session
def localserve(session: nox.Session) -> None:
    """Run `mox localserve` from a fresh install (args go to mox localserve)."""
    install(session)
    session.run("mox", "localserve", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """atheris (libFuzzer) over every parser target of scripts/fuzz_atheris.py, bounded in time:
    `nox -s fuzz -- SECONDS [TARGET ...]` (default 60 s each, all targets). Prints the runs and
    time per target; fails on the first crash (libFuzzer leaves the input in .fuzz/)."""
    install(session)
    session.install("atheris>=2.3")
    seconds = session.posargs[0] if session.posargs else "60"
    out = session.run("python", "scripts/fuzz_atheris.py", "--list", silent=True)
    assert isinstance(out, str)
    listed = [line for line in out.splitlines() if line.startswith("targets:")]
    targets = session.posargs[1:] or listed[0].split(":", 1)[1].split()
    os.makedirs(".fuzz", exist_ok=True)
    figures = []
    for target in targets:
        log = session.run(
            "python",
            "scripts/fuzz_atheris.py",
            target,
            f"-max_total_time={seconds}",
            f"-artifact_prefix=.fuzz/{target}-",
            "-print_final_stats=1",
            silent=True,
        )
        assert isinstance(log, str)
        done = re.search(r"Done (\d+) runs in (\d+) second", log)
        if done is None:
            session.error(f"{target}: no libFuzzer summary: {log[-300:]}")
        figures.append(f"{target}: {done.group(1)} runs in {done.group(2)} s, 0 crashes")
    for line in figures:
        session.log(line)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Ours against Postfix->Dovecot, table + bench/results.json (args go to `python -m bench`,
    e.g. -- --quick, -- --ours-only); installs the Debian parts it needs (bench/deps.py)."""
    if "--ours-only" not in session.posargs:
        session.run("python", "-m", "bench.deps", external=True)
    install(session, "bench")
    session.run("python", "-m", "bench", *session.posargs)
