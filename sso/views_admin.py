"""Settings pages of single sign-on: `/o/<slug>/settings/sso` (SAML) and `/o/<slug>/settings/scim`.

Like the other settings pages (accounts/views_admin.py) they render what is simple server-side
and leave every change to the organization's API (`/api/saml/settings`, `/api/scim/settings`,
`/api/scim/tokens`), so the API's validation and permissions decide every write.
"""

from __future__ import annotations

import json

from django.urls import re_path

from accounts.access import Actor, actor_of, can
from accounts.views_admin import render_settings, settings_page
from sso.grants import MAPPABLE_ROLES
from sso.models import IdpProvider

SP_FIELDS = [("entity_id", "Entity ID (metadata URL)"), ("acs_url", "Assertion consumer service (ACS) URL"),
             ("logout_url", "Single logout URL"), ("login_url", "Login URL")]
ATTRIBUTE_FIELDS = [("mapping_email", "Email attribute"), ("mapping_first_name", "First name attribute"),
                    ("mapping_last_name", "Last name attribute"), ("mapping_groups", "Groups attribute")]


def _mapping_context(actor: Actor, *, moment: str) -> dict:
    """What the group-mapping editor offers: roles, shared workspaces and the projects the actor sees."""
    from labeling.access import visible_projects
    from labeling.models import Project
    from workspaces.models import Workspace

    return {
        "can_change": can(actor, "sso.change"),
        "mapping_moment": moment,
        "mapping_roles": [str(role.label) for role in MAPPABLE_ROLES],
        "mapping_workspaces": list(Workspace.objects.filter(is_personal=False, is_archived=False)
                                   .order_by("title").values_list("title", flat=True)),
        "mapping_projects": list(visible_projects(actor, Project.objects.order_by("title", "id"))
                                 .values("id", "title")),
    }


@settings_page("sso")
def saml_page(request):
    actor = actor_of(request)
    return render_settings(request, "sso/admin/saml.html", section="sso", context={
        **_mapping_context(actor, moment="SAML login"),
        "sp_fields": SP_FIELDS,
        "sp_keys": json.dumps([key for key, _ in SP_FIELDS]),
        "attribute_fields": ATTRIBUTE_FIELDS,
        "providers": IdpProvider.choices,
    })


@settings_page("scim")
def scim_page(request):
    return render_settings(request, "sso/admin/scim.html", section="scim", context={
        **_mapping_context(actor_of(request), moment="change your IdP provisions"),
    })


page_urlpatterns = [
    re_path(r"^settings/sso/?$", saml_page, name="settings-sso"),
    re_path(r"^settings/scim/?$", scim_page, name="settings-scim"),
]
