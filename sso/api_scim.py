"""SCIM 2.0 service provider (`/scim/v2/...`) and its settings API (`/api/scim/...`).

The protocol views answer only the organization's SCIM bearer token (tenants.resolver routes it
and refuses a bad one; here anything else, a browser session included, gets 401), always in
SCIM's formats (`application/scim+json`). They are thin: sso/scim.py reads and writes.

`/api/scim/settings` (Label Studio's shape plus the base URLs to give the IdP) and
`/api/scim/tokens` are ordinary API views behind the permission matrix (sso.view, sso.change).
"""

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import get_script_prefix, path, re_path
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import limits as billing_limits
from platform_core.routing import route
from sso import scim
from sso.models import ScimToken
from sso.scim_errors import SCIM_CONTENT_TYPE, scim_error
from sso.scim_patch import ScimError
from sso.selectors import ScimCredential, scim_settings_of, scim_tokens_of
from sso.services import scim_token_create, scim_token_revoke

logger = logging.getLogger(__name__)
JSON_CONTENT_TYPES = ("application/scim+json", "application/json")
NOT_A_SCIM_TOKEN = "SCIM endpoints take the organization's SCIM bearer token (Authorization: Bearer scim_...)."


def scim_response(document, *, status_code: int = 200, version: str | None = None,
                  location: str | None = None) -> HttpResponse:
    response = JsonResponse(document, status=status_code, content_type=SCIM_CONTENT_TYPE,
                            json_dumps_params={"ensure_ascii": False})
    if version:
        response["ETag"] = version
    if location:
        response["Location"] = location
    return response


def _base_url(request) -> str:
    """The SCIM base the client used: `/o/<slug>/scim/v2` or `/scim/v2`, absolute."""
    return request.build_absolute_uri(f"{get_script_prefix()}scim/v2")


@method_decorator(csrf_exempt, name="dispatch")  # a bearer token, never a cookie, authenticates here
class ScimView(View):
    """SCIM plumbing: the credential check, errors in SCIM's format, JSON bodies, 405s."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def dispatch(self, request, *args, **kwargs):
        credential = getattr(request, "credential", None)
        if not isinstance(credential, ScimCredential) or getattr(request, "organization", None) is None \
                or credential.organization.pk != request.organization.pk:
            return scim_error(401, NOT_A_SCIM_TOKEN)
        self.organization = request.organization
        self.token_id = credential.token_id
        self.base_url = _base_url(request)
        handler = getattr(self, request.method.lower(), None) if request.method != "OPTIONS" else None
        if handler is None:
            response = scim_error(405, f"{request.method} is not allowed here.")
            response["Allow"] = ", ".join(method.upper() for method in ("get", "post", "put", "patch", "delete")
                                          if callable(getattr(self, method, None)))
            return response
        try:
            billing_limits.feature_or_raise(organization_id=self.organization.pk, feature="scim")
            return handler(request, *args, **kwargs)
        except billing_limits.FeatureNotInPlan as exc:
            return scim_error(403, str(exc.detail["detail"]))
        except ScimError as exc:
            return scim_error(exc.status, exc.detail, scim_type=exc.scim_type)
        except (billing_limits.LimitReached, billing_limits.ReadOnly) as exc:
            # No seat left on the plan (or the organization is read-only): the IdP shows the detail.
            return scim_error(403, str(exc.detail["detail"]))
        except Exception:
            # The IdP reads SCIM errors only; the services' transactions have rolled back by now.
            logger.exception("SCIM %s %s failed", request.method, request.path)
            return scim_error(500, "The service provider failed to answer; the request changed nothing.")

    def body(self, request):
        content_type = (request.content_type or "").lower()
        if content_type and content_type not in JSON_CONTENT_TYPES:
            raise ScimError(415, f"Send {SCIM_CONTENT_TYPE} (or application/json), not {content_type}.")
        try:
            raw = request.body
        except RequestDataTooBig:
            raise ScimError(413, "The request body is too large.") from None
        try:
            return json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ScimError(400, "The body is not valid JSON.", "invalidSyntax") from None

    @staticmethod
    def if_match(request) -> str | None:
        return request.headers.get("If-Match")

    @staticmethod
    def not_modified(request, version: str | None) -> bool:
        wanted = request.headers.get("If-None-Match")
        return bool(wanted and version and version in {value.strip() for value in wanted.split(",")})


# --- discovery -----------------------------------------------------------------------------------

class ServiceProviderConfigView(ScimView):
    def get(self, request):
        return scim_response(scim.service_provider_config(base_url=self.base_url))


class ResourceTypesView(ScimView):
    def get(self, request):
        documents = [scim.resource_type_document(name=name, base_url=self.base_url) for name in scim.RESOURCE_TYPES]
        return scim_response(scim.list_response(resources=documents, total=len(documents), start_index=1))


class ResourceTypeView(ScimView):
    name = ""

    def get(self, request):
        return scim_response(scim.resource_type_document(name=self.name, base_url=self.base_url))


class SchemasView(ScimView):
    def get(self, request):
        documents = [scim.schema_document(schema_id=urn, base_url=self.base_url) for urn in scim.SCHEMAS]
        return scim_response(scim.list_response(resources=documents, total=len(documents), start_index=1))


class SchemaView(ScimView):
    schema_id = ""

    def get(self, request):
        return scim_response(scim.schema_document(schema_id=self.schema_id, base_url=self.base_url))


class RootSearchView(ScimView):
    def post(self, request):
        raise ScimError(501, "Searching several resource types at once is not supported: POST "
                             "/Users/.search or /Groups/.search.")


class NotFoundView(ScimView):
    """The SCIM catch-all: a SCIM 404 (after the token check: a browser never reads SCIM)."""

    def _missing(self, request, *args, **kwargs):
        return scim_error(404, f"No SCIM endpoint at {request.path}.")

    get = post = put = patch = delete = _missing


def scim_unauthenticated(request, *args, **kwargs):
    """Bare `/scim/...` with no token (public URLconf): SCIM's 401."""
    return scim_error(401, NOT_A_SCIM_TOKEN)


# --- Users and Groups ----------------------------------------------------------------------------

class _ListParameters:
    """startIndex, count, filter, attributes, excludedAttributes: from the query string or a
    SearchRequest body (POST .../.search)."""

    def __init__(self, source: dict):
        lowered = {str(key).lower(): value for key, value in source.items()}

        def text(name: str) -> str | None:
            value = lowered.get(name)
            if isinstance(value, list):
                value = ",".join(str(item) for item in value)
            if value is not None and not isinstance(value, str):
                raise ScimError(400, f"{name} must be a string.", "invalidValue")
            return value

        self.filter = text("filter")
        self.attributes = text("attributes")
        self.excluded = text("excludedattributes")
        self.start_index, self.count = scim.page_bounds(start_index=lowered.get("startindex"),
                                                         count=lowered.get("count"))


def _search_body(view: ScimView, request) -> dict:
    body = view.body(request)
    if not isinstance(body, dict):
        raise ScimError(400, "A search body is a SearchRequest object.", "invalidSyntax")
    return body


class UsersView(ScimView):
    def get(self, request):
        return self.listing(_ListParameters(request.GET.dict()))

    def listing(self, parameters: _ListParameters):
        page = scim.scim_users_page(organization=self.organization, filter_text=parameters.filter,
                                    start_index=parameters.start_index, count=parameters.count)
        resources = [scim.project(scim.user_document(row, base_url=self.base_url), attributes=parameters.attributes,
                                  excluded=parameters.excluded, spec=scim.USER_SPEC) for row in page.rows]
        return scim_response(scim.list_response(resources=resources, total=page.total, start_index=page.start_index))

    def post(self, request):
        scim_user = scim.scim_user_create(organization=self.organization, payload=self.body(request),
                                          token_id=self.token_id)
        document = scim.user_document(scim_user, base_url=self.base_url)
        return scim_response(document, status_code=201, version=document["meta"]["version"],
                             location=document["meta"]["location"])


class UsersSearchView(UsersView):
    get = None

    def post(self, request):
        return self.listing(_ListParameters(_search_body(self, request)))


class UserView(ScimView):
    def found(self, scim_id):
        scim_user = scim.scim_user_get(organization=self.organization, scim_id=scim_id)
        if scim_user is None:
            raise ScimError(404, f"No User {scim_id!r} here.")
        return scim_user

    def answer(self, request, scim_user, *, check_cache: bool = False):
        document = scim.user_document(scim_user, base_url=self.base_url)
        version = document["meta"]["version"]
        if check_cache and self.not_modified(request, version):
            return HttpResponse(status=304, headers={"ETag": version})
        projected = scim.project(document, attributes=request.GET.get("attributes"),
                                 excluded=request.GET.get("excludedAttributes"), spec=scim.USER_SPEC)
        return scim_response(projected, version=version, location=document["meta"]["location"])

    def get(self, request, scim_id):
        return self.answer(request, self.found(scim_id), check_cache=True)

    def put(self, request, scim_id):
        scim_user = scim.scim_user_replace(organization=self.organization, scim_user=self.found(scim_id),
                                           payload=self.body(request), if_match=self.if_match(request),
                                           token_id=self.token_id)
        return self.answer(request, scim_user)

    def patch(self, request, scim_id):
        scim_user = scim.scim_user_patch(organization=self.organization, scim_user=self.found(scim_id),
                                         payload=self.body(request), if_match=self.if_match(request),
                                         token_id=self.token_id)
        return self.answer(request, scim_user)

    def delete(self, request, scim_id):
        scim.scim_user_delete(organization=self.organization, scim_user=self.found(scim_id),
                              if_match=self.if_match(request), token_id=self.token_id)
        return HttpResponse(status=204)


class GroupsView(ScimView):
    def get(self, request):
        return self.listing(_ListParameters(request.GET.dict()))

    def listing(self, parameters: _ListParameters):
        with_members = scim.members_wanted(attributes=parameters.attributes, excluded=parameters.excluded)
        page = scim.scim_groups_page(organization=self.organization, filter_text=parameters.filter,
                                     start_index=parameters.start_index, count=parameters.count,
                                     with_members=with_members)
        resources = [scim.project(scim.group_document(row, base_url=self.base_url),
                                  attributes=parameters.attributes, excluded=parameters.excluded,
                                  spec=scim.GROUP_SPEC) for row in page.rows]
        return scim_response(scim.list_response(resources=resources, total=page.total, start_index=page.start_index))

    def post(self, request):
        group = scim.scim_group_create(organization=self.organization, payload=self.body(request),
                                       token_id=self.token_id)
        document = scim.group_document(group, base_url=self.base_url)
        return scim_response(document, status_code=201, version=document["meta"]["version"],
                             location=document["meta"]["location"])


class GroupsSearchView(GroupsView):
    get = None

    def post(self, request):
        return self.listing(_ListParameters(_search_body(self, request)))


class GroupView(ScimView):
    def found(self, scim_id, *, with_members: bool = True):
        group = scim.scim_group_get(organization=self.organization, scim_id=scim_id, with_members=with_members)
        if group is None:
            raise ScimError(404, f"No Group {scim_id!r} here.")
        return group

    def answer(self, request, group, *, check_cache: bool = False):
        document = scim.group_document(group, base_url=self.base_url)
        version = document["meta"].get("version")
        if check_cache and self.not_modified(request, version):
            return HttpResponse(status=304, headers={"ETag": version})
        projected = scim.project(document, attributes=request.GET.get("attributes"),
                                 excluded=request.GET.get("excludedAttributes"), spec=scim.GROUP_SPEC)
        return scim_response(projected, version=version, location=document["meta"]["location"])

    def get(self, request, scim_id):
        with_members = scim.members_wanted(attributes=request.GET.get("attributes"),
                                           excluded=request.GET.get("excludedAttributes"))
        return self.answer(request, self.found(scim_id, with_members=with_members), check_cache=True)

    def put(self, request, scim_id):
        group = scim.scim_group_replace(organization=self.organization, group=self.found(scim_id, with_members=False),
                                        payload=self.body(request), if_match=self.if_match(request),
                                        token_id=self.token_id)
        return self.answer(request, group)

    def patch(self, request, scim_id):
        group = scim.scim_group_patch(organization=self.organization, group=self.found(scim_id, with_members=False),
                                      payload=self.body(request), if_match=self.if_match(request),
                                      token_id=self.token_id)
        return self.answer(request, group)

    def delete(self, request, scim_id):
        scim.scim_group_delete(organization=self.organization, group=self.found(scim_id, with_members=False),
                               if_match=self.if_match(request), token_id=self.token_id)
        return HttpResponse(status=204)


def _scim(route: str, view, **initkwargs) -> list:
    """A literal SCIM route (path() escapes it), with and without the trailing slash."""
    served = view.as_view(**initkwargs)
    return [path(f"scim/v2/{route}", served), path(f"scim/v2/{route}/", served)]


def _scim_resource(endpoint: str, view):
    return re_path(rf"^scim/v2/{endpoint}/(?P<scim_id>[^/]+)/?$", view.as_view())


# Schema ids and resource type names are spelled out: no path parameter but the resources' ids.
# `.search` comes before the id routes, which would take it for an id.
scim_urlpatterns = [
    *_scim("ServiceProviderConfig", ServiceProviderConfigView),
    *_scim("ResourceTypes", ResourceTypesView),
    *[route for name in scim.RESOURCE_TYPES for route in _scim(f"ResourceTypes/{name}", ResourceTypeView, name=name)],
    *_scim("Schemas", SchemasView),
    *[route for urn in scim.SCHEMAS for route in _scim(f"Schemas/{urn}", SchemaView, schema_id=urn)],
    *_scim(".search", RootSearchView),
    *_scim("Users", UsersView),
    *_scim("Users/.search", UsersSearchView),
    _scim_resource("Users", UserView),
    *_scim("Groups", GroupsView),
    *_scim("Groups/.search", GroupsSearchView),
    _scim_resource("Groups", GroupView),
    re_path(r"^scim/", NotFoundView.as_view()),
]


# --- /api/scim/settings and /api/scim/tokens -------------------------------------------------------

def _organization(request):
    return request._request.organization


def _site_base(request) -> str:
    return (getattr(settings, "PUBLIC_URL", "") or request.build_absolute_uri("/")).rstrip("/")


def scim_settings_payload(*, request, row) -> dict:
    organization = _organization(request)
    base = _site_base(request)
    return {
        "roles_groups": row.roles_groups or [],
        "workspaces_groups": row.workspaces_groups or [],
        "projects_groups": row.projects_groups or [],
        # What to give the identity provider: the organization's SCIM base URL, or the bare one
        # (the token names the organization).
        "scim_base_url": f"{base}/o/{organization.slug}/scim/v2/",
        "scim_bare_url": f"{base}/scim/v2/",
    }


class ScimSettingsApi(APIView):
    """Label Studio's SCIM settings: the group mappings SCIM group membership applies."""

    permissions = {"GET": "sso.view", "POST": "sso.change"}

    def get(self, request):
        row = scim_settings_of(organization=_organization(request))
        return Response(scim_settings_payload(request=request, row=row))

    def post(self, request):
        row = scim.scim_settings_update(organization=_organization(request), actor=request.user,
                                        data=request.data, request=request)
        return Response(scim_settings_payload(request=request, row=row), status=status.HTTP_201_CREATED)


def scim_token_payload(token: ScimToken) -> dict:
    return {
        "id": token.pk,
        "label": token.label,
        "token_prefix": token.token_prefix,
        "created_at": token.created_at,
        "created_by": token.created_by.email if token.created_by_id else None,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


class ScimTokenListCreateApi(APIView):
    """The organization's SCIM bearer tokens; a new one's value is in the creation answer only."""

    permissions = {"GET": "sso.view", "POST": "sso.change"}

    def get(self, request):
        tokens = scim_tokens_of(organization=_organization(request)).select_related("created_by")
        return Response([scim_token_payload(token) for token in tokens])

    def post(self, request):
        label = request.data.get("label", "") if isinstance(request.data, dict) else ""
        if not isinstance(label, str):
            raise ValidationError({"label": "A label is a string."})
        billing_limits.feature_or_raise(organization_id=_organization(request).pk, feature="scim")
        token, value = scim_token_create(organization=_organization(request), actor=request.user, label=label,
                                         request=request)
        return Response({**scim_token_payload(token), "token": value}, status=status.HTTP_201_CREATED)


class ScimTokenDetailApi(APIView):
    permissions = {"DELETE": "sso.change"}

    def delete(self, request, pk):
        token = scim_tokens_of(organization=_organization(request)).filter(pk=pk).first()
        if token is None:
            raise Http404("No SCIM token with this id in this organization.")
        scim_token_revoke(token=token, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    route(r"scim/settings", ScimSettingsApi),
    route(r"scim/tokens", ScimTokenListCreateApi),
    route(r"scim/tokens/(?P<pk>\d+)", ScimTokenDetailApi),
]
