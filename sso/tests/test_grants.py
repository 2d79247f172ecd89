"""Group mappings applied to a member (sso/grants.py): what a group gives, a removed group takes
back, and nothing an administrator gave by hand is ever taken."""

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from accounts import services as accounts
from accounts.models import AuditEvent, Membership, Role
from conftest import PASSWORD
from labeling.models import Project, ProjectMember, ProjectRole
from sso.grants import GroupMappings, access_sync, mappings_clean
from sso.models import SamlSettings, SsoGrant
from workspaces.models import Workspace, WorkspaceMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def setting(world):
    """Org A's SAML settings with one mapping of each kind, and the workspace and projects they name."""
    with tenant_context(world.org_a):
        legal = Workspace.objects.create(title="Legal", created_by=world.owner_a.user)
        archive = Workspace.objects.create(title="Archive", created_by=world.owner_a.user)
        charters = Project.objects.create(title="Charters", created_by=world.owner_a.user)
        letters = Project.objects.create(title="Letters", created_by=world.owner_a.user)
    cleaned = mappings_clean(organization=world.org_a, data={
        "roles_groups": [["Manager", "editors"], ["Annotator", "staff"], ["AD", "admins"]],
        "workspaces_groups": [["Legal", "editors"], ["Archive", "staff"]],
        "projects_groups": [{"project_id": charters.pk, "group": "editors", "role": "Reviewer"},
                            {"project_id": letters.pk, "group": "staff", "role": "Inherit"}],
    })
    row = SamlSettings.objects.create(organization=world.org_a, **cleaned)
    return row, {"legal": legal, "archive": archive, "charters": charters, "letters": letters}


def _sync(world, user, groups, row, *, create=True, source="saml"):
    return access_sync(organization=world.org_a, user=user, source=source, groups=groups,
                       mappings=GroupMappings.of(row), create_membership=create)


def _access(world, user):
    with tenant_context(world.org_a):
        return (
            Membership.objects.get(user=user, organization=world.org_a).role,
            set(WorkspaceMembership.objects.filter(user_id=user.pk).values_list("workspace__title", flat=True)),
            set(ProjectMember.objects.filter(user_id=user.pk).values_list("project__title", flat=True)),
            dict(ProjectRole.objects.filter(user_id=user.pk).values_list("project__title", "role")),
        )


def test_mappings_are_stored_in_label_studios_shapes_with_role_names(world, setting):
    row, objects = setting
    assert row.roles_groups == [["Manager", "editors"], ["Annotator", "staff"], ["Administrator", "admins"]]
    assert row.projects_groups[0] == {"project_id": objects["charters"].pk, "group": "editors", "role": "Reviewer"}


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"roles_groups": [["Owner", "root"]]}, "roles_groups", "Owners are made by an Owner"),
    ({"roles_groups": [["Chief", "x"]]}, "roles_groups", "unknown role"),
    ({"roles_groups": [["Manager"]]}, "roles_groups", "[role, group] pairs"),
    ({"roles_groups": [["Manager", " "]]}, "roles_groups", "non-empty"),
    ({"roles_groups": "Manager"}, "roles_groups", "list"),
    ({"workspaces_groups": [["Nowhere", "g"]]}, "workspaces_groups", "No workspace titled 'Nowhere'"),
    ({"projects_groups": [{"project_id": 999999, "group": "g", "role": "Inherit"}]}, "projects_groups",
     "No project 999999"),
    ({"projects_groups": [{"project_id": 1, "group": "g", "role": "Manager"}]}, "projects_groups",
     "Inherit, Annotator or Reviewer"),
    ({"projects_groups": [{"project_id": "1", "group": "g", "role": "Inherit"}]}, "projects_groups",
     "project_id"),
])
def test_bad_mappings_are_refused_naming_the_field(world, data, field, words):
    with pytest.raises(ValidationError) as refused:
        mappings_clean(organization=world.org_a, data=data)
    assert field in refused.value.message_dict
    assert words in refused.value.message_dict[field][0]


def test_a_project_of_another_organization_cannot_be_mapped(world):
    with tenant_context(world.org_a):
        a_ids = set(Project.objects.values_list("pk", flat=True))
    with tenant_context(world.org_b):
        # Each schema counts its own ids: make one that A does not have.
        b_project = Project.objects.create(title="B's project", created_by=world.owner_b.user)
        while b_project.pk in a_ids:
            b_project = Project.objects.create(title="B's project", created_by=world.owner_b.user)
    with pytest.raises(ValidationError, match=f"No project {b_project.pk}"):
        mappings_clean(organization=world.org_a, data={
            "projects_groups": [{"project_id": b_project.pk, "group": "g", "role": "Inherit"}]})


def test_a_new_person_joins_with_the_strongest_mapped_role_and_everything_the_groups_give(world, setting):
    row, _ = setting
    user = accounts.user_create(email="newcomer@idp-a.test", password=PASSWORD)
    result = _sync(world, user, ["staff", "editors", "unmapped"], row)
    assert result.created and result.membership.role == Role.MANAGER
    assert _access(world, user) == ("MA", {"Legal", "Archive"}, {"Charters", "Letters"}, {"Charters": "RE"})
    event = AuditEvent.objects.filter(organization=world.org_a, action="sso.access_synced").latest("id")
    assert event.details["source"] == "saml" and event.details["user_id"] == user.pk


def test_without_a_mapped_role_a_new_person_gets_the_default_role(world, setting):
    row, _ = setting
    user = accounts.user_create(email="plain@idp-a.test", password=PASSWORD)
    result = _sync(world, user, ["nothing-mapped"], row)
    assert result.membership.role == world.org_a.default_role
    assert not SsoGrant.objects.filter(user=user).exists()


def test_a_removed_group_takes_back_what_it_gave_and_only_that(world, setting):
    row, objects = setting
    user = accounts.user_create(email="leaver@idp-a.test", password=PASSWORD)
    _sync(world, user, ["staff", "editors"], row)
    # An administrator adds a workspace and a project role by hand meanwhile.
    with tenant_context(world.org_a):
        by_hand = Workspace.objects.create(title="By hand", created_by=world.owner_a.user)
        WorkspaceMembership.objects.create(workspace=by_hand, user_id=user.pk)
        ProjectRole.objects.filter(project=objects["charters"], user_id=user.pk).delete()
        ProjectRole.objects.create(project=objects["letters"], user_id=user.pk, role=Role.MANAGER)

    result = _sync(world, user, ["staff"], row)
    assert result.role == {"from": "MA", "to": "AN"}
    role, workspaces, projects, project_roles = _access(world, user)
    assert role == "AN"
    assert workspaces == {"Archive", "By hand"}
    assert projects == {"Letters"}
    assert project_roles == {"Letters": "MA"}  # the hand-made override stays

    _sync(world, user, [], row)
    assert _access(world, user) == ("AN", {"By hand"}, set(), {"Letters": "MA"})
    assert not SsoGrant.objects.filter(user=user).exists()


def test_a_role_set_by_hand_is_restored_when_the_group_goes(world, setting):
    row, _ = setting
    user = accounts.user_create(email="reviewer@idp-a.test", password=PASSWORD)
    accounts.membership_set(user=user, organization=world.org_a, role=Role.REVIEWER)
    _sync(world, user, ["admins"], row)
    assert _access(world, user)[0] == "AD"
    _sync(world, user, [], row)
    assert _access(world, user)[0] == "RE"


def test_a_role_changed_by_hand_after_sso_set_it_is_left_alone(world, setting):
    row, _ = setting
    user = accounts.user_create(email="promoted@idp-a.test", password=PASSWORD)
    _sync(world, user, ["editors"], row)
    Membership.objects.filter(user=user, organization=world.org_a).update(role=Role.ADMINISTRATOR)
    _sync(world, user, [], row)
    assert _access(world, user)[0] == "AD"


def test_owners_and_deactivated_members_are_never_changed(world, setting):
    row, _ = setting
    result = _sync(world, world.owner_a.user, ["staff"], row)
    assert result.membership.role == Role.OWNER and result.role is None

    user = accounts.user_create(email="gone@idp-a.test", password=PASSWORD)
    accounts.membership_set(user=user, organization=world.org_a, role=Role.DEACTIVATED)
    _sync(world, user, ["editors"], row)
    assert _access(world, user) == ("DI", set(), set(), {})


def test_without_create_a_non_member_is_left_alone(world, setting):
    row, _ = setting
    user = accounts.user_create(email="outsider@idp-a.test", password=PASSWORD)
    assert _sync(world, user, ["editors"], row, create=False).membership is None
    assert not Membership.objects.filter(user=user).exists()


def test_each_protocol_takes_back_only_its_own_grants(world, setting):
    row, _ = setting
    user = accounts.user_create(email="both@idp-a.test", password=PASSWORD)
    _sync(world, user, ["staff"], row, source="scim")
    _sync(world, user, ["editors"], row, source="saml")
    _sync(world, user, [], row, source="saml")
    _, workspaces, projects, _ = _access(world, user)
    assert workspaces == {"Archive"} and projects == {"Letters"}


def test_syncing_in_org_a_touches_nothing_in_org_b(world, setting):
    row, _ = setting
    with tenant_context(world.org_b):
        before = (list(WorkspaceMembership.objects.values_list("id", flat=True)),
                  list(ProjectMember.objects.values_list("id", flat=True)))
    user = accounts.user_create(email="cross@idp-a.test", password=PASSWORD)
    accounts.membership_set(user=user, organization=world.org_b, role=Role.ANNOTATOR)
    _sync(world, user, ["admins", "editors", "staff"], row)
    with tenant_context(world.org_b):
        after = (list(WorkspaceMembership.objects.values_list("id", flat=True)),
                 list(ProjectMember.objects.values_list("id", flat=True)))
    assert after == before
    assert Membership.objects.get(user=user, organization=world.org_b).role == Role.ANNOTATOR


def test_many_members_are_synced_with_the_same_number_of_statements_as_a_few(world, setting):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sso.grants import access_sync_many

    row, _ = setting
    mappings = GroupMappings.of(row)

    def statements_for(count: int, name: str) -> int:
        people = [accounts.user_create(email=f"{name}-{n}@idp-a.test", password=PASSWORD) for n in range(count)]
        with CaptureQueriesContext(connection) as joined:
            results = access_sync_many(organization=world.org_a, source="scim", mappings=mappings,
                                       create_membership=True,
                                       groups_of={person: ["editors", "staff"] for person in people})
        assert all(result.membership.role == Role.MANAGER for result in results.values())
        assert _access(world, people[-1]) == ("MA", {"Legal", "Archive"}, {"Charters", "Letters"},
                                              {"Charters": "RE"})
        with CaptureQueriesContext(connection) as left:
            access_sync_many(organization=world.org_a, source="scim", mappings=mappings,
                             groups_of={person: [] for person in people})
        assert _access(world, people[0]) == ("AN", set(), set(), {})
        return len(joined) + len(left)

    assert statements_for(3, "few") == statements_for(40, "many")
