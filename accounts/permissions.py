"""The effective right of an API call is the member's role AND the token's scopes."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ADMIN_ROLES, ALL_SCOPES, Scope
from accounts.selectors import Credential


def scopes_of(request) -> frozenset[str]:
    """Scopes of the request's credential; a browser session carries them all."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, Credential):
        return auth.scopes
    return frozenset(ALL_SCOPES)


class RoleAndScope(BasePermission):
    """Default for every API view.

    A view may set `required_scope` (else read for safe methods, write otherwise) and
    `required_roles` (roles allowed for unsafe methods; default every active role).
    """

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        membership = getattr(request._request, "membership", None)
        if membership is None or not membership.is_active:
            self.message = "You are not an active member of this organization."
            return False
        scope = getattr(view, "required_scope", None) or (
            Scope.READ if request.method in SAFE_METHODS else Scope.WRITE
        )
        if scope not in scopes_of(request):
            self.message = f"This token lacks the '{scope}' scope."
            return False
        roles = getattr(view, "required_roles", None)
        if roles is not None and request.method not in SAFE_METHODS and membership.role not in roles:
            self.message = "Your role does not allow this action."
            return False
        return True


class AdminRoleAndScope(RoleAndScope):
    """Organization settings: Owner or Administrator, with the admin scope, for writes."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS:
            return True
        if Scope.ADMIN not in scopes_of(request):
            self.message = "This token lacks the 'admin' scope."
            return False
        if request._request.membership.role not in ADMIN_ROLES:
            self.message = "Only an Owner or Administrator can change this."
            return False
        return True


def role_required(roles, message: str) -> type[RoleAndScope]:
    """RoleAndScope, with one of `roles` required for every method, reads included."""

    class RoleRequired(RoleAndScope):
        def has_permission(self, request, view):
            if not super().has_permission(request, view):
                return False
            if request._request.membership.role not in roles:
                self.message = message
                return False
            return True

    return RoleRequired
