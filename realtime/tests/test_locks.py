"""Task locks as people see them: opening a task takes it, the heartbeat keeps it, closing,
leaving or submitting gives it back, and everyone on the project hears each change within a
second. Two tabs of one person share a lock; the label stream never hands a locked task to
someone else; expired locks are swept and announced."""

import time

from django_tenants.utils import tenant_context

from conftest import ocr_result
from realtime.tests.client import api_call

WITHIN = 1.0  # what "at once" means to the people on the project


def _locks(world, task_id, django_db_blocker):
    from labeling.models import TaskLock

    with django_db_blocker.unblock(), tenant_context(world.org_a):
        return sorted(TaskLock.objects.filter(task_id=task_id).values_list("user_id", flat=True))


def test_open_heartbeat_close_are_heard_by_everyone(world, lock_project, stream, django_db_blocker):
    task = lock_project.task_ids[0]
    annotator, watcher = stream(world.annotator_a), stream(world.manager_a)
    annotator.send("task.open", task=task)
    granted = annotator.expect("task.lock_granted", task=task)
    locked = watcher.expect("task.locked", task=task, within=WITHIN)
    assert locked["user"] == {"id": world.annotator_a.user.pk, "email": "annotator@a.test",
                              "first_name": "", "last_name": ""}
    assert locked["until"] == granted["until"]
    assert _locks(world, task, django_db_blocker) == [world.annotator_a.user.pk]

    time.sleep(0.05)
    annotator.send("heartbeat", task=task)
    assert annotator.expect("task.lock_granted", task=task)["until"] > granted["until"]
    watcher.quiet("task.locked", within=0.3)  # an extension is no news

    annotator.send("task.close", task=task)
    unlocked = watcher.expect("task.unlocked", task=task, within=WITHIN)
    assert (unlocked["user"]["id"], unlocked["reason"]) == (world.annotator_a.user.pk, "closed")
    assert _locks(world, task, django_db_blocker) == []


def test_a_newcomer_is_greeted_with_the_live_locks_and_who_is_where(world, lock_project, stream):
    task = lock_project.task_ids[1]
    annotator = stream(world.annotator_a)
    annotator.send("task.open", task=task)
    annotator.expect("task.lock_granted")
    hello = stream(world.manager_a).hello
    assert [(lock["task"], lock["user"]["id"]) for lock in hello["locks"]] == [(task, world.annotator_a.user.pk)]
    on = {(entry["user"]["id"], entry["task"]) for entry in hello["presence"]}
    assert (world.annotator_a.user.pk, task) in on
    assert (world.manager_a.user.pk, None) in on


def test_presence_joined_moved_left(world, lock_project, stream):
    watcher = stream(world.manager_a)
    first_tab = stream(world.annotator_a)
    assert watcher.expect("presence.joined", within=WITHIN)["user"]["id"] == world.annotator_a.user.pk
    second_tab = stream(world.annotator_a)
    watcher.quiet("presence.joined", within=0.3)  # the same person, another tab
    first_tab.send("task.open", task=lock_project.task_ids[0])
    moved = watcher.expect("presence.moved", within=WITHIN)
    assert (moved["user"]["id"], moved["task"]) == (world.annotator_a.user.pk, lock_project.task_ids[0])
    first_tab.close()
    # The person stays (the other tab), and is on no task any more.
    moved = watcher.expect("presence.moved", within=WITHIN)
    assert (moved["user"]["id"], moved["task"]) == (world.annotator_a.user.pk, None)
    watcher.quiet("presence.left", within=0.3)
    second_tab.close()
    assert watcher.expect("presence.left", within=WITHIN)["user"]["id"] == world.annotator_a.user.pk


def test_two_tabs_share_a_lock_until_the_last_one_goes(world, lock_project, stream, django_db_blocker):
    task = lock_project.task_ids[0]
    watcher = stream(world.manager_a)
    first_tab, second_tab = stream(world.annotator_a), stream(world.annotator_a)
    first_tab.send("task.open", task=task)
    first_tab.expect("task.lock_granted")
    second_tab.send("task.open", task=task)
    second_tab.expect("task.lock_granted")
    watcher.expect("task.locked", task=task, within=WITHIN)
    watcher.quiet("task.locked", within=0.3)

    first_tab.send("task.close", task=task)
    watcher.quiet("task.unlocked", within=0.5)
    assert _locks(world, task, django_db_blocker) == [world.annotator_a.user.pk]

    second_tab.close()  # the last tab with the task goes away
    unlocked = watcher.expect("task.unlocked", task=task, within=WITHIN)
    assert unlocked["reason"] == "disconnected"
    assert _locks(world, task, django_db_blocker) == []


def test_a_held_task_is_refused_and_the_label_stream_never_hands_it_out(world, live_server_url, lock_project,
                                                                        stream, django_db_blocker):
    held, *others = lock_project.task_ids
    annotator = stream(world.annotator_a)
    annotator.send("task.open", task=held)
    annotator.expect("task.lock_granted")

    manager = stream(world.manager_a)
    manager.send("task.open", task=held)
    refused = manager.expect("task.lock_refused", task=held)
    assert [holder["user"]["id"] for holder in refused["holders"]] == [world.annotator_a.user.pk]

    handed = []
    for member in (world.manager_a, world.reviewer_a, world.owner_a):
        response = api_call(live_server_url, member, "get", f"/api/projects/{lock_project.pk}/next")
        handed.append(response.json()["id"] if response.status_code == 200 else response.status_code)
        if response.status_code == 200:
            # The label stream's reservation is news on the project too.
            locked = annotator.expect("task.locked", task=handed[-1], within=WITHIN)
            assert locked["user"]["id"] == member.user.pk
    assert handed == [*others, 404]
    assert _locks(world, held, django_db_blocker) == [world.annotator_a.user.pk]


def test_submit_and_skip_over_http_release_and_update_counts_live(world, live_server_url, lock_project, stream):
    submitted, skipped, _ = lock_project.task_ids
    annotator, watcher = stream(world.annotator_a), stream(world.manager_a)
    for task in (submitted, skipped):
        annotator.send("task.open", task=task)
        annotator.expect("task.lock_granted", task=task)
    response = api_call(live_server_url, world.annotator_a, "post", f"/api/tasks/{submitted}/annotations",
                    {"result": ocr_result(text="Live")})
    assert response.status_code == 201, response.text
    assert watcher.expect("task.unlocked", task=submitted, within=WITHIN)["reason"] == "submitted"
    created = watcher.expect("annotation.created", task=submitted, within=WITHIN)
    assert created["annotation"] == response.json()["id"]
    assert created["user"]["id"] == world.annotator_a.user.pk
    assert created["task_counts"] == {"total_annotations": 1, "cancelled_annotations": 0, "is_labeled": True}

    response = api_call(live_server_url, world.annotator_a, "post", f"/api/tasks/{skipped}/annotations",
                    {"result": [], "was_cancelled": True})
    assert response.status_code == 201, response.text
    assert watcher.expect("task.unlocked", task=skipped, within=WITHIN)["reason"] == "skipped"
    assert watcher.expect("annotation.created", task=skipped, within=WITHIN)["was_cancelled"] is True


def test_expired_locks_are_swept_and_announced(world, lock_project, stream, in_schema, django_db_blocker):
    from labeling.models import Project
    from realtime.locks import expired_locks_sweep

    in_schema(world.org_a, lambda: Project.objects.filter(pk=lock_project.pk).update(custom_task_lock_ttl=1))
    task = lock_project.task_ids[2]
    annotator, watcher = stream(world.annotator_a), stream(world.manager_a)
    annotator.send("task.open", task=task)
    annotator.expect("task.lock_granted")
    with django_db_blocker.unblock():
        assert expired_locks_sweep() == 0  # not yet
        time.sleep(1.1)
        assert expired_locks_sweep() == 1
    expired = watcher.expect("task.lock_expired", task=task, within=WITHIN)
    assert expired["user"]["id"] == world.annotator_a.user.pk
    assert _locks(world, task, django_db_blocker) == []
    # The tab's next heartbeat takes the task again: it still has room.
    annotator.send("heartbeat", task=task)
    annotator.expect("task.lock_granted", task=task)
    watcher.expect("task.locked", task=task, within=WITHIN)


def test_a_heartbeat_keeps_the_lock_past_its_first_ttl(world, lock_project, stream, in_schema, django_db_blocker):
    from labeling.models import Project
    from realtime.locks import expired_locks_sweep

    in_schema(world.org_a, lambda: Project.objects.filter(pk=lock_project.pk).update(custom_task_lock_ttl=2))
    task = lock_project.task_ids[0]
    annotator = stream(world.annotator_a)
    annotator.send("task.open", task=task)
    annotator.expect("task.lock_granted")
    time.sleep(1.2)
    annotator.send("heartbeat", task=task)
    annotator.expect("task.lock_granted")
    time.sleep(1.2)  # past the first TTL, within the extended one
    with django_db_blocker.unblock():
        assert expired_locks_sweep() == 0
    assert _locks(world, task, django_db_blocker) == [world.annotator_a.user.pk]


def test_bad_messages_get_an_error_and_the_socket_stays(world, lock_project, stream):
    socket = stream(world.annotator_a)
    socket.connection.send("not json")
    assert socket.expect("error")["code"] == "invalid_json"
    socket.send("task.open", task="seven")
    assert socket.expect("error")["code"] == "invalid"
    socket.send("task.open", task=10**9)
    assert socket.expect("error")["code"] == "not_found"
    socket.send("dance")
    assert socket.expect("error")["code"] == "unknown_type"
    socket.send("ping")
    socket.expect("pong")
