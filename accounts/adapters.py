from urllib.parse import quote

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib import messages
from django.shortcuts import redirect


class AccountAdapter(DefaultAccountAdapter):
    """allauth hooks. Signup goes through accounts.views.signup_view, which also creates the organization."""

    def get_login_redirect_url(self, request):
        return "/"

    def pre_login(self, request, user, **kwargs):
        """Every allauth login is a password (or emailed code) login: refused to a person whose
        organizations all require single sign-on (sso/sessions.py)."""
        from sso.sessions import DISCOVERY_PATH, sso_only_organization_for_password_login

        if not kwargs.get("signup"):
            organization = sso_only_organization_for_password_login(user=user)
            if organization is not None:
                from allauth.account.internal.stagekit import clear_login

                clear_login(request)
                messages.error(request, f"{organization.title} signs in through single sign-on only: continue "
                                        "with your organization's identity provider.")
                return redirect(f"{DISCOVERY_PATH}?email={quote(user.email)}")
        return super().pre_login(request, user, **kwargs)
