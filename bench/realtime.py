"""Benchmark: lock-event latency with N websocket clients on one project across two daphne processes.

What it runs, all on this machine: a throwaway database `scriptorium_bench_rt_<pid>` on the
PostgreSQL server of DATABASE_URL (migrated, dropped at the end, also on error or Ctrl-C), two
daphne processes on it and on REDIS_URL, `--clients` websocket clients spread evenly over both
(in `--client-processes` processes of their own, each socket with its own one-use ticket, people
`--users` annotators with several tabs each), and a driver socket on process 1 that, `--rounds`
times, opens a task (taking its lock) and closes it (releasing it).

Latency is from the moment the driver sends `task.open` / `task.close` (so it includes taking or
releasing the lock in PostgreSQL, printed apart as the driver's task.open -> lock_granted) to the
moment each client has read `task.locked` / `task.unlocked`; CLOCK_MONOTONIC is one clock for
every process of the machine. Printed: p50/p99 over every delivery, and over rounds of the time
until the last client had it; connections, resident memory and CPU per socket write of each
daphne process. The clients read frames with a minimal RFC 6455 reader (they share the servers'
cores here, where browsers would not), and ping every 20 s, each at its own moment.

Usage: python -m platform_core.embedded -- .venv/bin/python bench/realtime.py
       [--clients 1000] [--users 100] [--rounds 100] [--gap 0.2] [--layer pubsub|core|both]
"""

import argparse
import asyncio
import base64
import gc
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
LAYERS = {"pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer", "core": "channels_redis.core.RedisChannelLayer"}
CONNECT_CONCURRENCY = 50



def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- set-up (Django, in this process) -------------------------------------------------------------

def prepare(*, users: int, rounds: int) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from accounts import services as accounts
    from accounts.models import Role, User
    from labeling import services as labeling
    from labeling.models import ProjectMember, Task
    from tenants.services import warm_pool_refill

    call_command("migrate_schemas", interactive=False, verbosity=0)
    warm_pool_refill(target_size=1)
    unusable = make_password(None)  # people who never log in: no password hashing to wait for
    owner = User.objects.create(email="owner@bench.test", password=unusable)
    organization = accounts.organization_create_with_owner(user=owner, title="Realtime bench", slug="rt-bench")
    people = User.objects.bulk_create([User(email=f"annotator{n}@bench.test", password=unusable)
                                       for n in range(users)])
    for person in people:
        accounts.membership_set(user=person, organization=organization, role=Role.ANNOTATOR)
    with tenant_context(organization):
        project = labeling.project_create(user=owner, fields={"title": "Realtime bench"})
        labeling.tasks_import(project=project, user=owner,
                              tasks=[{"data": {"ocr": f"https://example.test/{n}.png"}} for n in range(rounds)])
        ProjectMember.objects.bulk_create([ProjectMember(project=project, user=person) for person in people])
        task_ids = list(Task.objects.filter(project=project).order_by("id").values_list("pk", flat=True))
    return {"organization": organization.pk, "project": project.pk, "tasks": task_ids,
            "people": [person.pk for person in people], "driver": owner.pk}


def tickets_for(*, organization_id: int, user_ids: list[int]) -> list[str]:
    from accounts.models import ALL_SCOPES
    from realtime.tickets import ticket_issue

    return [ticket_issue(user_id=user_id, organization_id=organization_id, scopes=frozenset(ALL_SCOPES),
                         ttl_seconds=600) for user_id in user_ids]


def start_daphne(env: dict) -> tuple[subprocess.Popen, int]:
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "platform_core.asgi:application"],
        env=env, cwd=BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"daphne did not start: {server.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def established_on(port: int) -> int:
    """Server-side TCP connections of the port (ESTABLISHED, local port = the server's)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                count += 1
    return count


# --- clients (their own processes) ----------------------------------------------------------------

def client_process(sockets: list[tuple[str, str]], ready, stop, results) -> None:
    """Open the sockets, say how many on `ready`, then note when each lock event arrives; once told
    to `stop`, send {"<type>:<task>": [receipt times]} on `results`."""
    gc.freeze()  # as the servers do (platform_core/asgi.py): no full collection pauses mid-round
    gc.set_threshold(50_000, 20, 20)
    asyncio.run(_clients(sockets, ready, stop, results))


class _Listener(asyncio.Protocol):
    """One client socket, read with as little work as a client can do (RFC 6455 over a raw
    asyncio protocol), so the clients, on the servers' two cores, cost the measure little: the
    handshake, then unmasked server frames; only lock events are decoded."""

    def __init__(self, *, host: str, path: str, greeted: asyncio.Future, received: dict):
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.greeted, self.received = greeted, received
        self.buffer = bytearray()
        self.upgraded = False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        masked = bytes(byte ^ mask[n % 4] for n, byte in enumerate(payload))
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)  # short frames only

    def data_received(self, data):
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.greeted.set_exception(RuntimeError(bytes(self.buffer[:200]).decode(errors="replace")))
                return
            del self.buffer[:end + 4]
            self.upgraded = True
        while len(self.buffer) >= 2:
            opcode, length, offset = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < offset + length:
                return
            payload = bytes(self.buffer[offset:offset + length])
            del self.buffer[:offset + length]
            if opcode == 1:
                self.text_received(payload)
            elif opcode == 8 and not self.greeted.done():
                self.greeted.set_exception(RuntimeError(f"closed: {payload[:2].hex()} {payload[2:].decode()}"))

    def text_received(self, payload: bytes) -> None:
        if payload.startswith((b'{"type":"task.locked"', b'{"type":"task.unlocked"')):
            now = time.monotonic()
            event = json.loads(payload)
            self.received.setdefault(f"{event['type']}:{event['task']}", []).append(now)
        elif not self.greeted.done() and payload.startswith(b'{"type":"hello"'):
            self.greeted.set_result(True)


async def _clients(sockets, ready, stop, results) -> None:
    loop = asyncio.get_running_loop()
    received: dict[str, list[float]] = {}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    listeners = []

    async def open_one(url: str):
        parts = urlsplit(url)
        async with gate:
            greeted = loop.create_future()
            _, listener = await loop.create_connection(
                lambda: _Listener(host=parts.netloc, path=f"{parts.path}?{parts.query}", greeted=greeted,
                                  received=received),
                parts.hostname, parts.port)
            await asyncio.wait_for(greeted, 60)
            listeners.append(listener)

    async def keep_alive(listener):
        # Every 20 s, each socket at its own moment, as browsers that opened at different times.
        await asyncio.sleep(random.uniform(0, 20))
        while True:
            listener.send_text('{"type":"ping"}')
            await asyncio.sleep(20)

    await asyncio.gather(*(open_one(f"{base}?ticket={ticket}") for base, ticket in sockets))
    pingers = [asyncio.create_task(keep_alive(listener)) for listener in listeners]
    ready.put(len(listeners))
    await loop.run_in_executor(None, stop.get)
    for pinger in pingers:
        pinger.cancel()
    results.put(received)
    for listener in listeners:
        listener.transport.close()


# --- the driver -----------------------------------------------------------------------------------

async def drive(url: str, task_ids: list[int], *, gap: float) -> tuple[dict[str, float], list[float]]:
    """Take and release a lock per task; when each news left ("<type>:<task>" -> time), and how
    long each take took the server (task.open -> task.lock_granted, ms)."""
    from websockets.asyncio.client import connect

    sent: dict[str, float] = {}
    granted: list[float] = []
    async with connect(url, open_timeout=30, max_queue=None) as driver:
        assert json.loads(await driver.recv())["type"] == "hello"

        async def answer(kind: str, task_id: int):
            async for text in driver:
                event = json.loads(text)
                if event["type"] == kind and event.get("task") == task_id:
                    return event
            raise RuntimeError("driver socket closed")

        for task_id in task_ids:
            sent[f"task.locked:{task_id}"] = time.monotonic()
            await driver.send(json.dumps({"type": "task.open", "task": task_id}))
            await asyncio.wait_for(answer("task.lock_granted", task_id), 10)
            granted.append((time.monotonic() - sent[f"task.locked:{task_id}"]) * 1000)
            await asyncio.sleep(gap)
            sent[f"task.unlocked:{task_id}"] = time.monotonic()
            await driver.send(json.dumps({"type": "task.close", "task": task_id}))
            await asyncio.wait_for(answer("task.unlocked", task_id), 10)
            await asyncio.sleep(gap)
    return sent, granted


def run_layer(*, layer: str, world: dict, args, server_env: dict) -> dict:
    print(f"\n== channel layer: {LAYERS[layer]}")
    servers = [start_daphne({**server_env, "CHANNEL_LAYER_BACKEND": LAYERS[layer]}) for _ in range(2)]
    try:
        idle = [rss_mb(server.pid) for server, _ in servers]
        bases = [f"ws://127.0.0.1:{port}/ws/projects/{world['project']}/" for _, port in servers]
        people = world["people"]
        owners = [people[n % len(people)] for n in range(args.clients)]
        tickets = tickets_for(organization_id=world["organization"], user_ids=owners)
        sockets = [(bases[n % 2], ticket) for n, ticket in enumerate(tickets)]
        context = multiprocessing.get_context("spawn")
        ready, stop, results = context.Queue(), context.Queue(), context.Queue()
        started = time.monotonic()
        workers = [context.Process(target=client_process,
                                   args=(sockets[k::args.client_processes], ready, stop, results))
                   for k in range(args.client_processes)]
        for worker in workers:
            worker.start()
        connected = sum(ready.get(timeout=600) for _ in workers)
        connect_seconds = time.monotonic() - started
        time.sleep(1)  # let the presence news of the last arrivals settle
        loaded = [rss_mb(server.pid) for server, _ in servers]
        per_process = [established_on(port) for _, port in servers]
        print(f"{connected} clients connected in {connect_seconds:.1f} s; {args.rounds} rounds", flush=True)
        driver_ticket = tickets_for(organization_id=world["organization"], user_ids=[world["driver"]])[0]
        cpu_before = [cpu_seconds(server.pid) for server, _ in servers]
        sent, granted = asyncio.run(drive(f"{bases[0]}?ticket={driver_ticket}", world["tasks"][:args.rounds],
                                          gap=args.gap))
        time.sleep(1)
        cpu = [cpu_seconds(server.pid) - before for (server, _), before in zip(servers, cpu_before, strict=True)]
        after = [rss_mb(server.pid) for server, _ in servers]
        received: dict[str, list[float]] = {}
        for _ in workers:
            stop.put("stop")
        for _ in workers:
            for name, moments in results.get(timeout=120).items():
                received.setdefault(name, []).extend(moments)
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for server, _ in servers:
            server.send_signal(signal.SIGTERM)
        for server, _ in servers:
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()

    deliveries = {"task.locked": [], "task.unlocked": []}
    everyone = {"task.locked": [], "task.unlocked": []}
    missing = 0
    for name, moment in sent.items():
        kind = name.split(":")[0]
        arrivals = received.get(name, [])
        missing += connected - len(arrivals)
        latencies = [(arrival - moment) * 1000 for arrival in arrivals]
        deliveries[kind] += latencies
        if latencies:
            everyone[kind].append(max(latencies))
    print(f"server-side connections per process: {per_process[0]} / {per_process[1]}")
    for n, (before, with_clients, end) in enumerate(zip(idle, loaded, after, strict=True), start=1):
        print(f"daphne {n}: RSS {before:.0f} MB idle, {with_clients:.0f} MB with its clients, {end:.0f} MB after the "
              f"rounds ({(with_clients - before) * 1024 / max(per_process[n - 1], 1):.0f} kB per connection)")
    print(f"{'latency (ms)':<36}{'p50':>8}{'p99':>8}{'max':>8}")
    for kind in deliveries:
        for label, samples in ((f"{kind}, each delivery", deliveries[kind]),
                               (f"{kind}, all clients of a round", everyone[kind])):
            if samples:
                print(f"{label:<36}{statistics.median(samples):>8.1f}{percentile(samples, 99):>8.1f}"
                      f"{max(samples):>8.1f}")
    print(f"{'the driver: task.open -> lock_granted':<36}{statistics.median(granted):>8.1f}"
          f"{percentile(granted, 99):>8.1f}{max(granted):>8.1f}")
    print(f"events sent {len(sent)} x {connected} clients; deliveries missing: {missing}")
    # Each round is also announced as presence.moved twice (the driver on its task, then on none).
    sends = 2 * len(sent) * connected / 2
    print("daphne CPU during the rounds: " + ", ".join(
        f"process {n}: {seconds:.2f} s ({seconds * 1e6 / sends:.0f} us per socket write)"
        for n, seconds in enumerate(cpu, start=1)))
    return {"p99": percentile(deliveries["task.locked"] + deliveries["task.unlocked"], 99), "missing": missing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100, help="people the clients belong to (tabs per person: "
                                                               "clients / users)")
    parser.add_argument("--rounds", type=int, default=100, help="locks taken and released")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between a lock and its release, and "
                                                                "between rounds")
    parser.add_argument("--layer", choices=[*LAYERS, "both"], default="both")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url or not os.environ.get("REDIS_URL"):
        parser.error("set DATABASE_URL and REDIS_URL (python -m platform_core.embedded -- ... does)")

    # Imported here: the client processes (spawned) import this module with the sys.path the
    # throwaway database leaves, which no longer has bench/.
    from throwaway import throwaway_database

    try:
        with throwaway_database(database_url=args.database_url, what="rt", extra_env={
            "CACHE_KEY_PREFIX": f"bench-rt-{os.getpid()}-", "LOG_LEVEL": "WARNING",
            "REALTIME_IDLE_TIMEOUT_SECONDS": "600",
        }) as name:
            print(f"benchmark database {name}: {args.clients} clients of {args.users} people, {args.rounds} rounds")
            world = prepare(users=args.users, rounds=args.rounds)
            from django.db import connections

            connections.close_all()
            env = dict(os.environ)
            results = {layer: run_layer(layer=layer, world=world, args=args, server_env=env)
                       for layer in (LAYERS if args.layer == "both" else [args.layer])}
            if len(results) > 1:
                print("\n" + ", ".join(f"{layer}: p99 {result['p99']:.1f} ms" for layer, result in results.items()))
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
