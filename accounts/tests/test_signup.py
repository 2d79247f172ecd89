"""Signup in the browser flow (server side), the organization chooser, and all-or-nothing creation."""

import pytest
from django.core import mail
from django.db import connection

from accounts.models import Membership, Role, User
from tenants.models import Organization

pytestmark = pytest.mark.django_db

GOOD = {
    "first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.test",
    "password": "C0bol-and-compilers", "organization": "Navy Labs",
}


def _schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        return {row[0] for row in cursor.fetchall()}


def _counts():
    return (User.objects.count(), Organization.objects.count(), Membership.objects.count(), _schemas())


def test_signup_creates_owner_and_organization_and_lands_on_its_page(world, client):
    response = client.post("/signup/", GOOD)
    assert response.status_code == 302
    organization = Organization.objects.get(title="Navy Labs")
    assert response["Location"] == f"/o/{organization.slug}/"
    user = User.objects.get(email="grace@navy.test")
    assert Membership.objects.get(user=user, organization=organization).role == Role.OWNER
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Navy Labs" in page.content.decode() and "Owner" in page.content.decode()
    assert [message.to for message in mail.outbox] == [["grace@navy.test"]]
    assert "/accounts/confirm-email/" in mail.outbox[0].body, "email verification link is sent"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"slug": "org-a"}, "slug", "already taken"),
        ({"password": "password"}, "password", "too common"),
        ({"password": "12345678901"}, "password", "entirely numeric"),
        ({"email": "owner@a.test"}, "email", "already exists"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"organization": ""}, "organization", "required"),
    ],
)
def test_bad_signup_input_is_a_clear_400_and_creates_nothing(world, client, change, field, message):
    before = _counts()
    response = client.post("/signup/", {**GOOD, **change})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert _counts() == before, "no orphan schema, user or membership"


def test_several_bad_fields_are_reported_together(world, client):
    response = client.post("/signup/", {**GOOD, "slug": "org-a", "email": "owner@a.test"})
    assert set(response.context["form"].errors) >= {"slug", "email"}


def test_person_in_several_organizations_gets_a_chooser_and_can_create_another(world, client):
    client.force_login(world.owner_a.user)
    assert client.get("/")["Location"] == "/o/org-a/", "one organization: straight to it"

    response = client.post("/organizations/new/", {"organization": "Second Org"})
    assert response.status_code == 302
    second = Organization.objects.get(title="Second Org")
    assert Membership.objects.get(user=world.owner_a.user, organization=second).role == Role.OWNER

    chooser = client.get("/").content.decode()
    assert "Org A" in chooser and "Second Org" in chooser
    assert "/o/org-a/" in chooser and f"/o/{second.slug}/" in chooser


def test_login_with_email_and_password_reset_by_email(world, client):
    from conftest import PASSWORD

    response = client.post("/accounts/login/", {"login": "owner@a.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # logged in: straight to the only organization
    client.post("/accounts/logout/")
    response = client.post("/accounts/login/", {"login": "owner@a.test", "password": "wrong-password"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()

    response = client.post("/accounts/password/reset/", {"email": "owner@a.test"})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["owner@a.test"]
    assert "/accounts/password/reset/key/" in mail.outbox[-1].body
