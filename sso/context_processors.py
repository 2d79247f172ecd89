"""Where the header's "Log out" posts: a session made by this organization's SAML logs out through
its single logout (`/o/<slug>/saml/logout`, which also asks the IdP to end its session); any other
through allauth's `/accounts/logout/`."""

from sso.sessions import sso_organization_id


def logout_action(request):
    organization = getattr(request, "organization", None)
    session = getattr(request, "session", None)
    if organization is not None and session is not None and sso_organization_id(session) == organization.pk:
        return {"logout_action": f"/o/{organization.slug}/saml/logout"}
    return {"logout_action": "/accounts/logout/"}
