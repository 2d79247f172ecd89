"""The accept-invite page (public schema): `/invite/<token>/`, and Label Studio's
`/user/signup/?token=<token>` shape, which leads to it."""

from urllib.parse import quote

from allauth.account.adapter import get_adapter
from allauth.account.utils import complete_signup, setup_user_email
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path, re_path

from accounts import invites, services
from accounts.models import Invite, Role, User
from tenants.resolver import SESSION_ORGANIZATION_KEY


class InviteSignupForm(forms.Form):
    email = forms.EmailField(label="Email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, min_length=8)
    first_name = forms.CharField(label="First name", max_length=256)
    last_name = forms.CharField(label="Last name", max_length=256, required=False)

    def __init__(self, *args, invite: Invite, **kwargs):
        super().__init__(*args, initial={"email": invite.email}, **kwargs)
        if invite.email:
            # The invite is for this address: it is shown, and what the browser posts is ignored.
            self.fields["email"].disabled = True


def _role_label(role: str) -> str:
    """How the page names the role granted; nothing when the organization approves newcomers first."""
    return "" if role == Role.NOT_ACTIVATED else Role(role).label


def _refused(request, refusal: invites.InviteRefusal, invite: Invite | None = None):
    return render(request, "accounts/invite_refused.html",
                  {"refusal": refusal, "invite": invite}, status=refusal.status)


def _joined(request, membership):
    """After accepting: into the organization, or a note when it first has to activate the membership."""
    organization = membership.organization
    if not membership.is_active:
        return render(request, "accounts/invite_pending.html", {"invited_to": organization})
    request.session[SESSION_ORGANIZATION_KEY] = organization.pk
    return redirect(f"/o/{organization.slug}/")


def _signup_and_accept(request, invite: Invite, form: InviteSignupForm):
    data = form.cleaned_data
    email = invite.email or data["email"]
    try:
        with transaction.atomic():
            user = services.user_create(email=email, password=data["password"], first_name=data["first_name"],
                                        last_name=data["last_name"])
            if invite.email:
                # Receiving the invitation proved the address: no confirmation email for it.
                get_adapter(request).stash_verified_email(request, invite.email)
            setup_user_email(request, user, [])
            membership = invites.invite_accept(invite=invite, user=user, request=request)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
        return None
    response = complete_signup(request, user, settings.ACCOUNT_EMAIL_VERIFICATION, f"/o/{invite.organization.slug}/")
    if not request.user.is_authenticated:
        return response  # mandatory verification: allauth's "check your inbox" page
    return _joined(request, membership)


def invite_page(request, token: str):
    invite = invites.invite_get_by_token(token=token)
    refusal = invites.invite_refusal(invite, user=request.user)
    if refusal is not None:
        return _refused(request, refusal, invite)
    context = {
        "invite": invite,
        "invited_to": invite.organization,
        "role_label": _role_label(invites.role_granted_by(invite)),
        "login_url": f"{settings.LOGIN_URL}?next={quote(request.path)}",
    }
    if request.user.is_authenticated:
        context["your_membership"] = request.user.memberships.filter(organization=invite.organization).first()
        if request.method == "POST":
            try:
                membership = invites.invite_accept(invite=invite, user=request.user, request=request)
            except invites.InviteRefused as exc:
                return _refused(request, exc.refusal, invite)
            return _joined(request, membership)
        return render(request, "accounts/invite_accept.html", context)

    form = InviteSignupForm(request.POST or None, invite=invite)
    context["form"] = form
    context["has_account"] = bool(invite.email) and User.objects.filter(email__iexact=invite.email).exists()
    if request.method == "POST" and form.is_valid():
        try:
            response = _signup_and_accept(request, invite, form)
        except invites.InviteRefused as exc:
            return _refused(request, exc.refusal, invite)
        if response is not None:
            return response
    return render(request, "accounts/invite_accept.html", context, status=400 if form.errors else 200)


def label_studio_signup(request):
    """LS's invite links are `/user/signup/?token=...`; without a token this is the ordinary signup."""
    token = request.GET.get("token", "").strip()
    if not token:
        return redirect("signup")
    return redirect(f"/invite/{quote(token, safe='')}/")


# Included by the public URLconf.
public_page_urlpatterns = [
    path("invite/<str:token>/", invite_page, name="invite-accept"),
    path("invite/<str:token>", invite_page),
    re_path(r"^user/signup/?$", label_studio_signup),
]
