"""SAML settings API, in Label Studio Enterprise's shape: `/api/saml/settings` (GET, POST a partial
update, DELETE resets) and `/api/saml/settings/validate-metadata-url`. The flows themselves are
pages (sso/views_saml.py); the rules are in sso/saml.py."""

from django.core.exceptions import ValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import limits as billing_limits
from platform_core.routing import route
from sso import saml
from sso.models import SamlSettings
from sso.selectors import saml_settings_of


def saml_settings_payload(saml_settings: SamlSettings, *, base_url: str) -> dict:
    """LS's SamlSettings fields, our SP's URLs and our own switches (never the SP's private key)."""
    urls = saml.sp_urls(organization=saml_settings.organization, base_url=base_url)
    idp = saml.idp_of(saml_settings)
    return {
        "domain": saml_settings.domain,
        "idp_provider": saml_settings.idp_provider,
        "metadata_url": saml_settings.metadata_url,
        "metadata_xml": saml_settings.metadata_xml,
        "mapping_email": saml_settings.mapping_email,
        "mapping_first_name": saml_settings.mapping_first_name,
        "mapping_last_name": saml_settings.mapping_last_name,
        "mapping_groups": saml_settings.mapping_groups,
        "roles_groups": saml_settings.roles_groups or [],
        "workspaces_groups": saml_settings.workspaces_groups or [],
        "projects_groups": saml_settings.projects_groups or [],
        "acs_url": urls.acs,
        "login_url": urls.login,
        "logout_url": urls.sls,
        "metadata_xml_url": urls.metadata,
        "nameid_format": saml.NAMEID_FORMAT,
        "entity_id": urls.entity_id,
        "idp_entity_id": idp.entity_id if idp else None,
        "test_login_url": urls.test_login,
        "sso_only": saml_settings.sso_only,
        "allow_idp_initiated": saml_settings.allow_idp_initiated,
        "sign_authn_requests": saml_settings.sign_authn_requests,
        "tested_at": saml_settings.tested_at.isoformat() if saml_settings.tested_at else None,
    }


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError({"detail": "Send a JSON object."})
    # Form posts carry single values per key, like a JSON object.
    return request.data.dict() if hasattr(request.data, "dict") else dict(request.data)


class SamlSettingsApi(APIView):
    permissions = {"GET": "sso.view", "POST": "sso.change", "DELETE": "sso.change"}

    def get(self, request):
        settings_row = saml_settings_of(organization=request.organization)
        return Response(saml_settings_payload(settings_row, base_url=saml.base_url_of(request)))

    def post(self, request):
        billing_limits.feature_or_raise(organization_id=request.organization.pk, feature="sso")
        updated = saml.saml_settings_update(organization=request.organization, actor=request.user,
                                            data=_body(request), request=request)
        return Response(saml_settings_payload(updated, base_url=saml.base_url_of(request)),
                        status=status.HTTP_201_CREATED)

    def delete(self, request):
        saml.saml_settings_reset(organization=request.organization, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ValidateMetadataUrlApi(APIView):
    permissions = {"POST": "sso.change"}

    def post(self, request):
        url = _body(request).get("metadata_url")
        if not isinstance(url, str) or not url.strip():
            raise ValidationError({"metadata_url": "Give the identity provider's metadata URL."})
        return Response(saml.metadata_url_check(url=url.strip()))


urlpatterns = [
    route(r"saml/settings/validate-metadata-url", ValidateMetadataUrlApi),
    route(r"saml/settings", SamlSettingsApi),
]
