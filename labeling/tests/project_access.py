"""Test helper: project membership. Annotators and reviewers see only the projects they belong to
(labeling.access), so a test that creates a project adds the members who work in it."""

from django_tenants.utils import tenant_context

from labeling.models import ProjectMember


def add_project_members(world, project_id: int, *members) -> None:
    """Make org A's members (`conftest.Member`s or users) enabled members of the project."""
    with tenant_context(world.org_a):
        ProjectMember.objects.bulk_create(
            [ProjectMember(project_id=project_id, user=getattr(member, "user", member)) for member in members],
            ignore_conflicts=True,
        )
