"""Object rules of the labeling domain for accounts.access.can, and the querysets they imply.

A project is visible to an actor whose role there has `projects.view_all` (Owners and
Administrators by default), or who created it, is an enabled member of it, has a role override in
it, or is a member of its workspace. Everything inside a project (tasks, annotations, ...) is
visible when the project is. Annotations of others are hidden when the project hides them
(`annotator_sees_others` off) from roles without `annotations.view_all` there.
"""

from django.db.models import Q, QuerySet

from accounts.access import Actor, can, register_object_rule, roles_for
from labeling.models import (
    Annotation,
    AnnotationDraft,
    AnnotationReview,
    Comment,
    DataManagerView,
    ExportSnapshot,
    FileUpload,
    ImportJob,
    Prediction,
    Project,
    ProjectMember,
    Task,
    Webhook,
)


def _workspace_ids(actor: Actor) -> frozenset[int]:
    if not hasattr(actor, "_workspace_ids"):
        from workspaces.selectors import workspace_ids_of

        actor._workspace_ids = workspace_ids_of(user_id=actor.user.pk)
    return actor._workspace_ids


def _member_project_ids(actor: Actor) -> frozenset[int]:
    if not hasattr(actor, "_member_project_ids"):
        actor._member_project_ids = frozenset(
            ProjectMember.objects.filter(user_id=actor.user.pk, enabled=True).values_list("project_id", flat=True)
        )
    return actor._member_project_ids


def sees_all_projects(actor: Actor) -> bool:
    return actor.has_role_for("projects.view_all")


def visible_projects(actor: Actor, queryset: QuerySet | None = None) -> QuerySet:
    """The projects the actor may open, as a filter on `queryset` (default: all projects)."""
    queryset = Project.objects.all() if queryset is None else queryset
    if sees_all_projects(actor):
        # A project role override never hides a project from someone who sees them all.
        return queryset
    return queryset.filter(
        Q(created_by_id=actor.user.pk)
        | Q(pk__in=_member_project_ids(actor))
        | Q(pk__in=list(actor.project_roles))
        | Q(workspace_id__in=_workspace_ids(actor))
    )


def project_visible(actor: Actor, project: Project) -> bool:
    return (
        actor.has_role_for("projects.view_all", project_id=project.pk)
        or project.created_by_id == actor.user.pk
        or project.pk in _member_project_ids(actor)
        or project.pk in actor.project_roles
        or (project.workspace_id is not None and project.workspace_id in _workspace_ids(actor))
    )


def _role_allows(actor: Actor, permission: str) -> Q:
    """Projects (a condition on Project) where the actor's role allows `permission`: the
    organization role, unless a project role override says otherwise."""
    allowed = roles_for(permission, actor.overrides)
    if actor.role in allowed:
        return ~Q(pk__in=[pk for pk, role in actor.project_roles.items() if role not in allowed])
    return Q(pk__in=[pk for pk, role in actor.project_roles.items() if role in allowed])


def projects_permitting(actor: Actor, permission: str, queryset: QuerySet | None = None) -> QuerySet[Project]:
    """The visible projects in which the actor's role there allows `permission`."""
    return visible_projects(actor, queryset).filter(_role_allows(actor, permission))


def projects_showing_others_annotations(actor: Actor) -> QuerySet[Project]:
    """The projects whose tasks the actor sees with everyone's annotations, not only their own."""
    return projects_permitting(actor, "tasks.view").filter(
        Q(annotator_sees_others=True) | _role_allows(actor, "annotations.view_all"))


def work_visible_to(actor: Actor, queryset: QuerySet, *, project_field: str, own: Q,
                    permission: str = "tasks.view") -> QuerySet:
    """`queryset` (annotations, comments, history, reviews...) cut to what the actor may see: in
    projects where they may `permission`, and only their `own` unless the project shows everyone's
    work to them."""
    permitted = projects_permitting(actor, permission).values("pk")
    showing_others = projects_showing_others_annotations(actor).values("pk")
    return queryset.filter(Q(**{f"{project_field}__in": permitted}),
                           Q(**{f"{project_field}__in": showing_others}) | own)


def sees_others_annotations(actor: Actor, project: Project) -> bool:
    return project.annotator_sees_others or actor.has_role_for("annotations.view_all", project_id=project.pk)


def _project_rule(actor: Actor, permission: str, project: Project) -> bool:
    return project_visible(actor, project)


def _in_project_rule(actor: Actor, permission: str, obj) -> bool:
    return project_visible(actor, obj.project)


def _authored_rule(author_field: str, any_permission: str, *, addressed_to=None):
    """Reading follows the project (and, where it hides others' work, authorship or being the one
    `addressed_to` names); changing needs authorship or `any_permission`."""
    def rule(actor: Actor, permission: str, obj) -> bool:
        project = obj.project
        if not project_visible(actor, project):
            return False
        own = getattr(obj, author_field) == actor.user.pk
        if permission == "tasks.view":
            addressed = addressed_to is not None and addressed_to(obj) == actor.user.pk
            return own or addressed or sees_others_annotations(actor, project)
        return own or actor.has_role_for(any_permission, project_id=project.pk)
    return rule


def _comment_addressee(comment: Comment) -> int | None:
    """The author of the annotation a comment is on: they read every comment on their work."""
    return comment.annotation.completed_by_id if comment.annotation_id else None


def _draft_rule(actor: Actor, permission: str, draft: AnnotationDraft) -> bool:
    # Drafts are private to their author.
    return draft.user_id == actor.user.pk and project_visible(actor, draft.task.project)


def _review_rule(actor: Actor, permission: str, review: AnnotationReview) -> bool:
    return project_visible(actor, review.annotation.project)


def _webhook_rule(actor: Actor, permission: str, webhook: Webhook) -> bool:
    return webhook.project_id is None or project_visible(actor, webhook.project)


def _view_rule(actor: Actor, permission: str, view: DataManagerView) -> bool:
    if not project_visible(actor, view.project):
        return False
    # Tabs are shared in a project; changing another person's tab needs `tasks.change`.
    return permission != "data_manager.views" or view.user_id == actor.user.pk or actor.has_role_for(
        "tasks.change", project_id=view.project_id)


def _project_of_draft(draft: AnnotationDraft) -> int:
    return draft.task.project_id


def _project_of_review(review: AnnotationReview) -> int:
    return review.annotation.project_id


register_object_rule(Project, _project_rule, project_id_of=lambda project: project.pk)
def register_in_project(model: type) -> None:
    """Objects of `model` (with a `project`) follow their project's visibility: other apps' too."""
    register_object_rule(model, _in_project_rule, project_id_of=lambda obj: obj.project_id)


for _model in (Task, Prediction, FileUpload, ImportJob, ExportSnapshot):
    register_object_rule(_model, _in_project_rule, project_id_of=lambda obj: obj.project_id)
register_object_rule(Annotation, _authored_rule("completed_by_id", "annotations.change_any"),
                     project_id_of=lambda obj: obj.project_id)
register_object_rule(Comment, _authored_rule("created_by_id", "comments.change_any",
                                             addressed_to=_comment_addressee),
                     project_id_of=lambda obj: obj.project_id)
register_object_rule(AnnotationDraft, _draft_rule, project_id_of=_project_of_draft)
register_object_rule(AnnotationReview, _review_rule, project_id_of=_project_of_review)
register_object_rule(Webhook, _webhook_rule, project_id_of=lambda obj: obj.project_id)
register_object_rule(DataManagerView, _view_rule, project_id_of=lambda obj: obj.project_id)

__all__ = ["can", "project_visible", "sees_all_projects", "sees_others_annotations", "visible_projects"]
