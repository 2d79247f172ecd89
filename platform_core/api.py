"""Shared API plumbing: the DRF exception handler and the unauthenticated discovery endpoints."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.http import JsonResponse
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler


def validation_error_response(exc: DjangoValidationError) -> Response:
    """A Django ValidationError from a service as a 400 that names each field."""
    payload = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    return Response({"detail": "Invalid input.", "validation_errors": payload}, status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        return validation_error_response(exc)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        # Field errors: keep Label Studio's {"validation_errors": {...}} next to a readable detail.
        fields = ", ".join(sorted(response.data))
        response.data = {"detail": f"Invalid input in: {fields}.", "validation_errors": response.data}
    return response


class OpenApiView(APIView):
    """An endpoint that answers without authentication (discovery, or a credential in the body)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class VersionApi(OpenApiView):
    def get(self, request):
        version = settings.APP_VERSION
        return Response({
            "release": version,
            "edition": "Enterprise",
            "backend": {"name": "scriptorium", "version": version},
            "label-studio-os-package": {"version": version},
            "label-studio-os-backend": {"version": version},
            "label-studio-frontend": {},
            "dm2": {},
            "label-studio-converter": {},
            "lsf": {},
        })


def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def api_not_found(request, *args, **kwargs):
    return JsonResponse({"detail": "Not found."}, status=404)


def api_unauthenticated(request, *args, **kwargs):
    """Public-schema catch-all for /api/: no credential and no active organization in the session."""
    return JsonResponse(
        {"detail": "Authentication credentials were not provided."}, status=401,
        headers={"WWW-Authenticate": 'Token realm="api"'},
    )
