"""Users of the organization (/api/users/) and its session policy (/api/session-policy/).

A user is global (one account, many organizations); here only the organization's members are
seen, each with their membership of this organization only. Deleting a user removes the member
from this organization and never deletes the account.
"""

from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import organizations, selectors, services
from accounts.access import PermissionDenied, actor_of, can, require
from accounts.models import Membership, Role, SessionPolicy
from accounts.serializers import UserCreateSerializer, UserUpdateSerializer, member_user_payload
from accounts.session_policy import POLICY_FIELDS, session_policy_of, session_policy_update
from platform_core.routing import route


def _organization(request):
    return request._request.organization


def _member_or_404(request, pk) -> Membership:
    membership = selectors.organization_member_get(organization=_organization(request), user_id=pk)
    if membership is None:
        raise Http404("No user with this id in this organization.")
    return membership


def require_on_member(request, permission: str, membership: Membership) -> None:
    """`require` plus the Owner rule (accounts.organizations): only `members.owners` changes an
    Owner, so an Administrator cannot rename the Owners' accounts either."""
    actor = actor_of(request)
    require(actor, permission, membership)
    if membership.role == Role.OWNER and not can(actor, "members.owners"):
        raise PermissionDenied("members.owners", "Only an Owner can change an Owner's profile.")


def _member_response(request, membership: Membership, *, status_code=status.HTTP_200_OK) -> Response:
    return Response(member_user_payload(membership=membership, organization=_organization(request)),
                    status=status_code)


class UserListCreateApi(APIView):
    """GET: the organization's users (a plain list, `ordering`). POST: add a person by email."""

    permissions = {"GET": "users.view", "POST": "users.create"}

    def get(self, request):
        organization = _organization(request)
        members = selectors.organization_members(
            organization=organization, ordering=request.query_params.get("ordering") or None
        )
        return Response([member_user_payload(membership=m, organization=organization) for m in members])

    def post(self, request):
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.organization_user_create(
            organization=_organization(request), actor=request.user, request=request, **serializer.validated_data
        )
        return _member_response(request, membership, status_code=status.HTTP_201_CREATED)


class UserDetailApi(APIView):
    """One member. PATCH of your own profile needs no more than being a member; of someone else's,
    users.change (profile fields only). DELETE removes the member from this organization (their
account stays): accounts.organizations.membership_remove, as /api/organizations/{id}/memberships."""

    permissions = {"GET": "users.view", "PATCH": "profile.change", "DELETE": "members.change"}

    def get(self, request, pk):
        return _member_response(request, _member_or_404(request, pk))

    def patch(self, request, pk):
        membership = _member_or_404(request, pk)
        by_self = membership.user_id == request.user.pk
        if not by_self:
            require_on_member(request, "users.change", membership)
        serializer = UserUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.user_profile_update(user=membership.user, changes=serializer.validated_data, by_self=by_self)
        return _member_response(request, membership)

    def delete(self, request, pk):
        membership = _member_or_404(request, pk)
        require(actor_of(request), "members.change", membership)
        # The organizations service holds the Owner rules (last Owner, only Owners remove Owners).
        try:
            organizations.membership_remove(organization=_organization(request), actor=actor_of(request),
                                            membership=membership, request=request)
        except organizations.SelfRemovalError as exc:
            return Response({"detail": exc.messages[0]}, status=status.HTTP_405_METHOD_NOT_ALLOWED)
        return Response(status=status.HTTP_204_NO_CONTENT)


def session_policy_payload(policy: SessionPolicy) -> dict:
    return {
        "max_session_age": policy.max_session_age,
        "max_time_between_activity": policy.max_time_between_activity,
        "created_at": policy.created_at,
        "updated_at": policy.updated_at,
    }


class SessionPolicyApi(APIView):
    """The organization's browser-session limits, in minutes (accounts.session_policy enforces them)."""

    permissions = {"GET": "organizations.view", "PATCH": "session_policy.change"}

    def get(self, request):
        return Response(session_policy_payload(session_policy_of(organization=_organization(request))))

    def patch(self, request):
        changes = {field: request.data[field] for field in POLICY_FIELDS if field in request.data}
        policy = session_policy_update(organization=_organization(request), actor=request.user, changes=changes,
                                       request=request)
        return Response(session_policy_payload(policy))


urlpatterns = [
    route(r"users", UserListCreateApi),
    route(r"users/(?P<pk>\d+)", UserDetailApi),
    route(r"session-policy", SessionPolicyApi),
]
