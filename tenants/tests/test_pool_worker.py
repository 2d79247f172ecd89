"""The warm pool is refilled by a real Celery worker (Redis broker), as in production."""

import os
import subprocess
import sys
import time

from django.db import connection
from django_tenants.utils import schema_exists

from conftest import _database_url_of
from tenants.models import WarmSchema
from tenants.tasks import refill_warm_pool


def test_celery_worker_refills_the_pool_after_it_is_drained(world, redis_url, django_db_blocker, tmp_path):
    with django_db_blocker.unblock():
        database_url = _database_url_of(connection.settings_dict)
        target = WarmSchema.objects.count() + 2
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
           "TENANT_WARM_POOL_SIZE": str(target)}
    queue = f"pool-test-{os.getpid()}"
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "platform_core", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "w"),  # noqa: SIM115
    )
    try:
        refill_warm_pool.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        with django_db_blocker.unblock():
            while WarmSchema.objects.count() < target:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker did not refill the pool within 60 s"
                time.sleep(0.2)
            assert all(schema_exists(name) for name in WarmSchema.objects.values_list("schema_name", flat=True))
    finally:
        worker.terminate()
        worker.wait(timeout=20)
