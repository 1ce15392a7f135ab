"""pytest plugin for the Django tests of the whole suite (loaded by ``tests/conftest.py``).

- Configures Django with :mod:`django_support.settings` through
  ``settings.configure()`` (not the ``DJANGO_SETTINGS_MODULE`` environment
  variable, which would leak into every server subprocess the suite starts);
  pytest-django then runs ``django.setup()``.
- ``postgresql_server`` (session): a real PostgreSQL server started from
  Debian's binaries (``/usr/lib/postgresql/*/bin``) on 127.0.0.1 and a free
  port, in a temporary directory, as the ``postgres`` user when running as
  root. Without the binaries, tests that need it are skipped, except under
  ``CI=true`` where they fail.
- Tests that list ``"postgres"`` in ``@pytest.mark.django_db(databases=...)``
  get the server started and the ``postgres`` alias pointed at it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import django_support.settings as settings_module

POSTGRES_ALIAS = "postgres"
INITDB_ARGS = ("-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
#: ``pg_ctl start`` waits (``-w``) until the server accepts connections.
START = ("-w", "-t", "60", "start")


def _configure_django() -> None:
    from django.conf import settings

    if not settings.configured:
        values = {name: getattr(settings_module, name) for name in dir(settings_module)}
        settings.configure(**{k: v for k, v in values.items() if k.isupper()})


_configure_django()


def in_ci() -> bool:
    """Return whether the suite runs in CI (``CI=true``), where nothing may be skipped."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_bin_dir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or ``None`` when absent.

    Looks at ``$ASGISHIFT_PG_BIN``, then Debian's ``/usr/lib/postgresql/<v>/bin``
    (newest version first), then ``PATH``.
    """
    candidates = [os.environ.get("ASGISHIFT_PG_BIN", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()],
        reverse=True,
    )
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server (trust authentication, user ``postgres``).

    :param host: ``"127.0.0.1"``.
    :param port: its TCP port.
    :param bin_dir: where ``psql``, ``pg_ctl`` and the others live.
    """

    host: str
    port: int
    bin_dir: Path
    user: str = "postgres"

    def database_settings(self, name: str) -> dict[str, Any]:
        """Return a Django ``DATABASES`` entry for database ``name`` on this server."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": self.user,
            "HOST": self.host,
            "PORT": str(self.port),
        }

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL statement with ``psql`` and return its unaligned output.

        :raise subprocess.CalledProcessError: when the statement fails.
        """
        argv = [str(self.bin_dir / "psql"), "-h", self.host, "-p", str(self.port)]
        argv += ["-U", self.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-tAqc", sql]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()

    def create_database(self, name: str) -> None:
        """Create database ``name`` (dropping an existing one first)."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}"')
        self.psql(f'CREATE DATABASE "{name}"')

    def count_connections(self, database: str) -> int:
        """Return how many client backends are connected to ``database`` right now."""
        sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"
        return int(self.psql(sql))


def _as_postgres_user(argv: list[str]) -> list[str]:
    """Run ``argv`` as ``postgres`` when we are root (postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextlib.contextmanager
def start_postgres(
    bin_dir: Path, *, durable: bool = False, max_connections: int = 200
) -> Iterator[PostgresServer]:
    """Initialise a cluster in a temporary directory and run it on a free port.

    Also used by ``benchmarks/django_bench.py`` and ``benchmarks/django_views_bench.py``.

    :param durable: keep PostgreSQL's defaults for ``fsync``, ``synchronous_commit``
        and ``full_page_writes`` (benchmarks); by default they are off, which
        is faster and fine for a throwaway test database.
    :param max_connections: the server's connection limit.
    :raise subprocess.CalledProcessError: when ``initdb`` or ``pg_ctl`` fails
        (the message holds their output).
    """
    from live import free_port

    root = Path(tempfile.mkdtemp(prefix="asgishift-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    run = _as_postgres_user
    try:
        subprocess.run(
            run([str(bin_dir / "initdb"), "-D", str(data), *INITDB_ARGS]),
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root}"
        options += f" -c max_connections={max_connections}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, *START]),
            check=True,
            capture_output=True,
        )
        try:
            yield PostgresServer("127.0.0.1", port, bin_dir)
        finally:
            subprocess.run(
                run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                check=False,
                capture_output=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _require_postgres_binaries() -> Path:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        reason = (
            "PostgreSQL binaries not found (no initdb under /usr/lib/postgresql/*/bin or on "
            "PATH); install Debian's postgresql package or set ASGISHIFT_PG_BIN"
        )
        if in_ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return bin_dir


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session (see module docs)."""
    bin_dir = _require_postgres_binaries()
    with start_postgres(bin_dir) as server:
        yield server


def _uses_postgres(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    if marker is None:
        return False
    databases = marker.kwargs.get("databases", ())
    return databases == "__all__" or POSTGRES_ALIAS in databases


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, under ``CI=true``, fail) a test that uses the ``postgres`` alias when
    PostgreSQL is missing, before any fixture tries to reach it."""
    if _uses_postgres(item):
        _require_postgres_binaries()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    request: pytest.FixtureRequest, django_db_modify_db_settings_parallel_suffix: None
) -> None:
    """pytest-django hook: point the ``postgres`` alias at the test server, or drop the
    alias when no test needs it or PostgreSQL is missing (those tests are skipped)."""
    from django.conf import settings

    wanted = any(_uses_postgres(item) for item in request.session.items)
    if wanted and postgres_bin_dir() is not None:
        server: PostgresServer = request.getfixturevalue("postgresql_server")
        settings.DATABASES[POSTGRES_ALIAS].update(HOST=server.host, PORT=str(server.port))
    else:
        settings.DATABASES.pop(POSTGRES_ALIAS, None)
