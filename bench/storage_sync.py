"""Benchmark: storage sync throughput, S3 (moto's server) and local files.

What it runs, all on this machine: a throwaway database `scriptorium_bench_sync_<pid>` on the
PostgreSQL server of DATABASE_URL (migrated, dropped at the end, also on error or Ctrl-C), one
organization with one project, moto's S3 server on a free port, and a temporary folder. For each
provider it fills the container with `--objects` files (half of them under a sub-folder, a tenth
filtered out by the regex), then times, through `storages.services.sync_run` (the Celery job's
body, run in this process): the first sync (listing + tasks + links), a re-sync (listing only:
everything is known), an export storage's sync of `--annotations` annotations, and a sync of
`--json-files` task files (one task per JSON file: each object read).

Usage: python -m platform_core.embedded -- .venv/bin/python bench/storage_sync.py
       [--objects 10000] [--annotations 1000] [--json-files 1000] [--database-url URL]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from throwaway import throwaway_database

BASE_DIR = Path(__file__).resolve().parent.parent



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],  # noqa: S603
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, endpoint
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("moto's server did not start")


def layout(count: int) -> list[str]:
    """`count` keys: 45% at the top, 45% in deep/, 10% notes the regex leaves out."""
    pages = count * 9 // 10
    return ([f"scans/p-{n:06}.png" for n in range(pages // 2)]
            + [f"scans/deep/p-{n:06}.png" for n in range(pages - pages // 2)]
            + [f"scans/n-{n:06}.txt" for n in range(count - pages)])


def timed(label: str, function) -> float:
    started = time.monotonic()
    result = function()
    seconds = time.monotonic() - started
    print(f"  {label:<44}{seconds:8.2f} s   {result}", flush=True)
    return seconds


def run(*, objects: int, annotations: int, json_files: int) -> None:
    import boto3
    from botocore.config import Config
    from django.conf import settings
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from accounts import services as accounts
    from conftest import ocr_result
    from labeling import services as labeling
    from labeling.models import Task
    from storages import services
    from storages.models import Storage

    call_command("migrate_schemas", interactive=False, verbosity=0)
    owner, organization = accounts.signup(email="bench@sync.test", password="bench-password-1",
                                          organization_title="Sync bench")
    moto, endpoint = start_moto()
    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    settings.SSRF_PROTECTION_ALLOWLIST = [urlsplit(endpoint).netloc]
    settings.LOCAL_FILES_DOCUMENT_ROOT = str(folder)
    keys = layout(objects)
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench", config=Config(max_pool_connections=32))
        s3.create_bucket(Bucket="bench")
        started = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda key: s3.put_object(Bucket="bench", Key=key, Body=b"png", ContentType="image/png"),
                          keys))
        print(f"{objects} objects put in moto in {time.monotonic() - started:.1f} s")
        for key in keys:
            path = folder / organization.slug / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"png")

        with tenant_context(organization):
            for kind, fields in (
                ("s3", {"bucket": "bench", "s3_endpoint": endpoint, "region_name": "us-east-1",
                        "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}),
                ("localfiles", {"path": "."}),
            ):
                project = labeling.project_create(user=owner, fields={"title": f"Sync {kind}"})
                storage = services.storage_create(project=project, direction=Storage.Direction.IMPORT, kind=kind,
                                                  fields={"prefix": "scans", "regex_filter": r"\.png$",
                                                          "use_blob_urls": True, "recursive_scan": True, **fields})
                print(f"== {kind}: {objects} objects, {len(keys) * 9 // 10} match")

                def sync(storage_id=storage.pk):
                    services.sync_run(storage=Storage.objects.get(pk=storage_id))
                    done = Storage.objects.get(pk=storage_id)
                    assert done.status == "completed", done.traceback
                    return f"{done.last_sync_count} {'tasks added' if done.direction == 'import' else 'written'}"

                first = timed("first sync", sync)
                print(f"  {'':<44}{objects / first:8.0f} objects/s")
                timed("re-sync (nothing new)", sync)

                task_ids = list(Task.objects.filter(project=project).order_by("pk")
                                .values_list("pk", flat=True)[:annotations])
                labeling.annotations_bulk_create(project=project, user=owner, task_ids=task_ids,
                                                 result=ocr_result())
                target = services.storage_create(project=project, direction=Storage.Direction.EXPORT, kind=kind,
                                                 fields={"prefix": "out"} | fields)
                seconds = timed(f"export sync of {len(task_ids)} annotations", lambda t=target.pk: sync(t))
                print(f"  {'':<44}{len(task_ids) / seconds:8.0f} annotations/s")

                # One task per JSON file: every object is read.
                files = {f"tasks/t-{n:06}.json": json.dumps({"data": {"ocr": f"s3://bench/scans/p-{n:06}.png"}})
                         .encode() for n in range(json_files)}
                if kind == "s3":
                    with ThreadPoolExecutor(32) as pool:
                        list(pool.map(lambda item: s3.put_object(Bucket="bench", Key=item[0], Body=item[1],
                                                                 ContentType="application/json"), files.items()))
                else:
                    for key, data in files.items():
                        (folder / organization.slug / key).parent.mkdir(parents=True, exist_ok=True)
                        (folder / organization.slug / key).write_bytes(data)
                tasks_storage = services.storage_create(project=project, direction=Storage.Direction.IMPORT,
                                                        kind=kind, fields={"prefix": "tasks", **fields})
                seconds = timed(f"sync of {json_files} JSON task files", lambda t=tasks_storage.pk: sync(t))
                print(f"  {'':<44}{json_files / seconds:8.0f} files/s")
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--annotations", type=int, default=1000)
    parser.add_argument("--json-files", type=int, default=1000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        parser.error("set DATABASE_URL or pass --database-url (or run under platform_core.embedded)")
    try:
        with throwaway_database(database_url=args.database_url, what="sync") as name:
            print(f"benchmark database {name}")
            run(objects=args.objects, annotations=args.annotations, json_files=args.json_files)
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
