"""Two daphne processes and a Celery worker on one Redis, as deployed behind a load balancer:
what happens through process 1, or in the worker, reaches a client connected to process 2."""

import time

from django_tenants.utils import tenant_context

from realtime.tests.client import api_call

WITHIN = 1.0


def test_locks_jobs_and_sweeps_cross_processes(world, live_server_url, second_live_server_url, celery_worker_queue,
                                               lock_project, stream, in_schema, django_db_blocker, monkeypatch):
    from labeling import services
    from labeling.models import Project
    from labeling.tasks import run_import_job
    from realtime.tasks import sweep_expired_locks

    on_second = stream(world.manager_a, base=second_live_server_url)
    on_first = stream(world.annotator_a, base=live_server_url)
    # A lock taken over the websocket of process 1.
    on_first.send("task.open", task=lock_project.task_ids[0])
    on_first.expect("task.lock_granted")
    locked = on_second.expect("task.locked", task=lock_project.task_ids[0], within=WITHIN)
    assert locked["user"]["id"] == world.annotator_a.user.pk
    # The label stream of process 1 (HTTP).
    response = api_call(live_server_url, world.reviewer_a, "get", f"/api/projects/{lock_project.pk}/next")
    assert response.status_code == 200, response.text
    locked = on_second.expect("task.locked", task=response.json()["id"], within=WITHIN)
    assert locked["user"]["id"] == world.reviewer_a.user.pk

    # An import run by the worker.
    monkeypatch.setattr(run_import_job, "delay",
                        lambda *args: run_import_job.apply_async(args=args, queue=celery_worker_queue))
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        job = services.import_job_create(
            project=lock_project, tasks=[{"data": {"ocr": f"https://example.test/rt/w{n}.png"}} for n in range(5)],
            user=world.owner_a.user, found_formats={}, data_columns=["ocr"])
    done = on_second.expect("job.progress", status="completed", job={"kind": "import", "id": job.pk}, within=20)
    assert (done["done"], done["total"]) == (5, 5)

    # The worker's sweep announces a lock whose TTL passed.
    in_schema(world.org_a, lambda: Project.objects.filter(pk=lock_project.pk).update(custom_task_lock_ttl=1))
    on_first.send("task.open", task=lock_project.task_ids[2])
    on_first.expect("task.lock_granted")
    time.sleep(1.1)
    sweep_expired_locks.apply_async(queue=celery_worker_queue)
    expired = on_second.expect("task.lock_expired", task=lock_project.task_ids[2], within=10)
    assert expired["user"]["id"] == world.annotator_a.user.pk
