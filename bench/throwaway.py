"""The throwaway database of a benchmark: `scriptorium_bench_<what>_<pid>` made on the PostgreSQL
server of DATABASE_URL, Django set up on it (its migrations are the benchmark's to run), dropped
at the end: also on an error, Ctrl-C or `kill`. The database DATABASE_URL names is never touched."""

import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path="/" + name).geturl()


@contextmanager
def throwaway_database(*, database_url: str, what: str, extra_env: dict | None = None):
    """Yields the database's name with Django set up on it. `extra_env` is set before Django reads
    its settings; on-commit Celery jobs go nowhere (memory broker), logs default to WARNING and new
    organizations to the unlimited plan."""
    name = f"scriptorium_bench_{what}_{os.getpid()}"
    admin_url = with_database(database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on `kill` too
    try:
        os.environ.update({"DATABASE_URL": with_database(database_url, name),
                           "CELERY_BROKER_URL": "memory://localhost/",
                           "DJANGO_SETTINGS_MODULE": "platform_core.settings", **(extra_env or {})})
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        # Benchmarks measure the machinery, not a plan's limits: organizations start unlimited.
        os.environ.setdefault("BILLING_SIGNUP_PLAN", "enterprise")
        # The repository first, and without bench/: bench/realtime.py would shadow the `realtime` app.
        sys.path[:] = [str(BASE_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]
        import django

        django.setup()
        yield name
    finally:
        if "django.db" in sys.modules:
            sys.modules["django.db"].connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        print(f"dropped {name}")
