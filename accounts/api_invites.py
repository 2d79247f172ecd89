"""Invite API (Label Studio's /api/invite*): the shareable link, email invites, revoking."""

from django.core.exceptions import ValidationError
from django.http import Http404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import invites
from accounts.access import actor_of
from accounts.models import Invite
from platform_core.params import body_ids
from platform_core.routing import route

# Label Studio's seat types: standard and flex keep a normal role; view-only seats do not exist here.
SUPPORTED_USER_TYPES = (None, "", "standard", "flex")


def _organization(request):
    return request._request.organization


def _site_url(request) -> str:
    return request.build_absolute_uri("/")


def _link_payload(request, token: str) -> dict:
    return {"token": token, "invite_url": invites.invite_url(token=token, base_url=_site_url(request))}


def _list_field(data, name: str):
    """A list from a JSON body, or the repeated values of a form field; None when absent."""
    if hasattr(data, "getlist"):
        return data.getlist(name) or None
    return data.get(name)


def _ids_field(data, name: str) -> list[int]:
    value = _list_field(data, name)
    if value is None:
        return []
    if hasattr(data, "getlist"):
        try:
            value = [int(item) for item in value]
        except ValueError:
            raise ValidationError({name: "Must be a list of integers."}) from None
    return body_ids(value, field=name)


class InviteLinkApi(APIView):
    """GET /api/invite: the organization's shareable link, made on first use."""

    permissions = {"GET": "members.invite"}

    def get(self, request):
        _, token = invites.invite_link_get_or_create(organization=_organization(request), created_by=request.user)
        return Response(_link_payload(request, token))


class InviteLinkResetApi(APIView):
    """POST /api/invite/reset-token: the old link stops working; answers with the new one."""

    permissions = {"POST": "members.invite"}

    def post(self, request):
        _, token = invites.invite_link_reset(organization=_organization(request), actor=request.user,
                                             request=request)
        return Response(_link_payload(request, token))


class InviteSendEmailApi(APIView):
    """POST /api/invite/send-email: {emails, role, projects, workspaces}."""

    permissions = {"POST": "members.invite"}

    def post(self, request):
        data = request.data
        user_type = data.get("user_type")
        if user_type not in SUPPORTED_USER_TYPES:
            raise ValidationError({"user_type": "Only standard and flex seats are offered; invite with a role."})
        sent = invites.invites_send(
            organization=_organization(request), inviter=actor_of(request),
            emails=_list_field(data, "emails"), role=data.get("role"),
            project_ids=_ids_field(data, "projects"), workspace_ids=_ids_field(data, "workspaces"),
            base_url=_site_url(request), request=request,
        )
        detail = f"Invited {len(sent.invited)} address(es)."
        if sent.already_members:
            detail += f" Already members, not invited: {', '.join(sent.already_members)}."
        return Response({"detail": detail, "invited": sent.invited, "already_members": sent.already_members})


class InviteRevokeApi(APIView):
    """POST /api/invite/revoke: {email}; 404 when nothing is pending for it."""

    permissions = {"POST": "members.invite"}

    def post(self, request):
        try:
            revoked = invites.invites_revoke(organization=_organization(request), email=request.data.get("email"),
                                             actor=request.user, request=request)
        except Invite.DoesNotExist as exc:
            raise Http404(str(exc)) from None
        return Response({"detail": f"Revoked {revoked} invitation(s).", "revoked": revoked})


# Mounted under /api/ by the tenant URLconf.
urlpatterns = [
    route("invite", InviteLinkApi),
    route("invite/reset-token", InviteLinkResetApi),
    route("invite/send-email", InviteSendEmailApi),
    route("invite/revoke", InviteRevokeApi),
]
