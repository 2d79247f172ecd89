"""Pages of a project: the project page (`/o/<slug>/projects/<id>/`: counts, the task table, who is
here, activity, import and export) and the labeling screen (`.../label`: Label Studio's editor).

Like the settings pages (accounts/views_admin.py) they are thin: they check `can` (a project the
member cannot see is a 404, as if it did not exist; buttons they may not use are not rendered),
hand the page what it needs to start, and leave every read and write to the organization's JSON
API and every live update to the project's websocket (realtime/README.md), which the page
scripts under labeling/static/labeling/ call and follow.
"""

from __future__ import annotations

from django.shortcuts import render
from django.urls import re_path
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.access import Actor, actor_of, can, denial_message
from accounts.models import Role
from labeling import exports, selectors
from labeling.access import sees_others_annotations
from labeling.models import Project
from realtime.events import user_brief
from realtime.selectors import live_locks_of, users_brief

# The most recent history entries whose authors the page names before the feed loads them.
FEED_PEOPLE_ENTRIES = 50


def not_found(request):
    # Another organization's id and an invisible project look the same: no hint that it exists.
    return render(request, "tenants/refused.html", {"status": 404, "detail": "Not found."}, status=404)


def refused(request, permission: str):
    return render(request, "tenants/refused.html", {"status": 403, "detail": denial_message(permission)},
                  status=403)


def visible_project(actor: Actor, pk: int, *, with_counts: bool = False) -> Project | None:
    project = selectors.project_get(pk=pk) if with_counts else Project.objects.filter(pk=pk).first()
    return project if project is not None and can(actor, "projects.view", project) else None


def _feed_people(actor: Actor, project: Project) -> dict[int, dict]:
    """Names for the authors of the history the feed loads (the API gives their ids only), cut to
    the history this actor may read."""
    from labeling.api_review import _visible_history

    author_ids = set(_visible_history(actor).filter(project_id=project.pk).order_by("-id")
                     .values_list("created_by_id", flat=True)[:FEED_PEOPLE_ENTRIES])
    return users_brief(user_ids=author_ids - {None})


def page_config(request, project: Project, **extra) -> dict:
    """What the page scripts start from (json_script): where the API and the socket are, who you are."""
    prefix = f"/o/{request.organization.slug}/"
    return {
        "project": {"id": project.pk, "title": project.title},
        "orgBase": prefix,
        "apiBase": f"{prefix}api",
        "socketPath": f"{prefix}ws/projects/{project.pk}/",
        "me": user_brief(request.user),
        **extra,
    }


def render_page(request, template: str, project: Project, *, config: dict, context: dict):
    return render(request, template, {
        "project": project,
        "org_base": f"/o/{request.organization.slug}/",
        "api_base": f"/o/{request.organization.slug}/api",
        "organization_id": request.organization.pk,
        "me": request.user,
        "role_labels": {code: label for code, label in Role.choices},
        "page_config": config,
        **context,
    })


@ensure_csrf_cookie
def project_page(request, pk: int):
    actor = actor_of(request)
    project = visible_project(actor, pk, with_counts=True)
    if project is None:
        return not_found(request)
    allowed = {
        "label": can(actor, "annotations.create", project),
        "tasks": can(actor, "tasks.view", project),
        "import": can(actor, "tasks.import", project),
        # The export API also refuses someone who sees only their own annotations here.
        "export": can(actor, "exports.create", project) and sees_others_annotations(actor, project),
        "members": can(actor, "projects.change", project),
        "storages": can(actor, "storages.view", project),
    }
    # The locks in force, as the socket's `hello` lists them: the table shows them before (or without) it.
    config = page_config(request, project, can=allowed, locks=live_locks_of(project_id=project.pk),
                          people=_feed_people(actor, project))
    return render_page(request, "labeling/project.html", project, config=config,
                   context={"can": allowed, "export_formats": exports.formats()})


@ensure_csrf_cookie
def labeling_page(request, pk: int):
    actor = actor_of(request)
    project = visible_project(actor, pk)
    if project is None:
        return not_found(request)
    if not can(actor, "annotations.create", project):
        return refused(request, "annotations.create")
    requested = request.GET.get("task", "")
    config = page_config(
        request, project, labelConfig=project.label_config, locks=live_locks_of(project_id=project.pk),
        task=int(requested) if requested.isdigit() else None,
        showSkip=project.show_skip_button,
    )
    return render_page(request, "labeling/label.html", project, config=config, context={})


def _slash_optional(pattern: str, view, name: str):
    return re_path(rf"^{pattern}/?$", view, name=name)


page_urlpatterns = [
    _slash_optional(r"projects/(?P<pk>\d+)", project_page, "project-page"),
    _slash_optional(r"projects/(?P<pk>\d+)/label", labeling_page, "project-label"),
]
