"""SCIM's error format (RFC 7644 section 3.12), for every SCIM answer that is not a resource: the
SCIM views and the routing middleware (a bad token is refused before any view runs)."""

from django.http import JsonResponse

SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_CONTENT_TYPE = "application/scim+json"


def scim_error(status: int, detail: str, *, scim_type: str | None = None) -> JsonResponse:
    body = {"schemas": [SCIM_ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    response = JsonResponse(body, status=status, content_type=SCIM_CONTENT_TYPE)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="scim"'
    return response


def is_scim_path(path: str) -> bool:
    """`/scim/...`, or `/o/<slug>/scim/...` before the prefix is stripped."""
    if path.startswith("/o/"):
        path = "/" + path[3:].partition("/")[2]
    return path.startswith("/scim/")
