"""`manage.py bootstrap`: idempotent, prints one JSON line with working credentials."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Membership, Role
from tenants.models import Organization

pytestmark = pytest.mark.django_db

TOKEN = "f" * 40


def _bootstrap(*args) -> dict:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_bootstrap_is_idempotent_and_prints_usable_tokens(world, api):
    args = ["--org", "boot", "--email", "boot@boot.test", "--password", "B00t-strapping!", "--token", TOKEN]
    first = _bootstrap(*args)
    second = _bootstrap(*args)

    assert first["org"] == "boot" and first["token"] == TOKEN == second["token"]
    assert Organization.objects.filter(slug="boot").count() == 1
    assert Membership.objects.get(user__email="boot@boot.test", organization__slug="boot").role == Role.OWNER
    assert api.call("get", "/api/current-user/whoami", token=TOKEN).json()["email"] == "boot@boot.test"
    access = api.access_for(second["pat"])
    assert api.call("get", "/o/boot/api/current-user/whoami", bearer=access).status_code == 200


def test_bootstrap_without_token_prints_a_fresh_working_key(world, api):
    result = _bootstrap("--org", "boot2", "--email", "b2@boot.test", "--password", "B00t-strapping!")
    assert api.call("get", "/api/current-user/whoami", token=result["token"]).status_code == 200


def test_bootstrap_refuses_bad_input_clearly(world):
    with pytest.raises(CommandError, match="password"):
        _bootstrap("--org", "boot3", "--email", "b3@boot.test", "--password", "123")
    assert not Organization.objects.filter(slug="boot3").exists()
