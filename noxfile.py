"""Developer and CI sessions; CI runs `nox -s lint typecheck schema tests` (via ./run test)."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
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
