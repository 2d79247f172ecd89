"""A session made by organization A's SAML speaks for A's identity provider: it may not change the
name or email that organization B's members see too; a person only in A may."""

import json

import pytest

from accounts import services
from accounts.models import Role

pytestmark = pytest.mark.django_db


def _patch(client, body):
    return client.patch("/o/org-a/api/current-user", json.dumps(body), content_type="application/json")


def test_an_sso_session_of_a_person_in_two_organizations_keeps_the_shared_name(world, saml_a, client):
    person = services.user_create(email="both@a.test", password="a-long-password-1", first_name="Both")
    services.membership_set(user=person, organization=world.org_a, role=Role.ANNOTATOR)
    services.membership_set(user=person, organization=world.org_b, role=Role.ANNOTATOR)
    assert saml_a.login(client, email="both@a.test").status_code == 302
    refused = _patch(client, {"first_name": "Renamed by A", "last_name": "Too"})
    assert refused.status_code == 400
    assert set(refused.json()["validation_errors"]) == {"first_name", "last_name"}
    person.refresh_from_db()
    assert (person.first_name, person.email) == ("Both", "both@a.test")
    assert _patch(client, {"allow_newsletters": True}).status_code == 200  # the rest of the profile is theirs


def test_a_person_only_in_a_renames_themselves_from_an_sso_session(world, saml_a, client):
    assert saml_a.login(client, email="only-a@a.test").status_code == 302  # made just in time
    answer = _patch(client, {"first_name": "Ada"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["first_name"] == "Ada"
