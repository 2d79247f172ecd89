from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """allauth hooks. Signup goes through accounts.views.signup_view, which also creates the organization."""

    def get_login_redirect_url(self, request):
        return "/"
