"""Webhooks API (Label Studio's /api/webhooks/): `webhooks.view` to read them, reads being
restricted too (a webhook's headers often carry the receiver's credentials), `webhooks.change` to
write. A project's webhooks follow the project's visibility; organization-wide ones need the
permission in the organization. Signing is described in labeling/webhooks.py; the signing secret
appears once, as `secret`, in the creation response."""

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.access import Actor, can, require
from labeling import access, webhooks
from labeling.api import LabelingApi, _project_or_404, object_or_404
from labeling.models import Project, Webhook
from platform_core.params import query_bool, query_int
from platform_core.routing import route


class WebhookInputSerializer(serializers.Serializer):
    """Types only; the service checks the URL (SSRF), header names and the project."""

    url = serializers.CharField(max_length=2048, trim_whitespace=True)
    headers = serializers.JSONField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)
    send_payload = serializers.BooleanField(required=False)
    send_for_all_actions = serializers.BooleanField(required=False)
    actions = serializers.ListField(child=serializers.ChoiceField(choices=sorted(webhooks.ACTIONS)), required=False,
                                    allow_null=True)
    project = serializers.IntegerField(required=False, allow_null=True, min_value=1)


def webhook_payload(webhook: Webhook) -> dict:
    return {
        "id": webhook.pk,
        "organization": getattr(connection.tenant, "pk", None),
        "project": webhook.project_id,
        "url": webhook.url,
        "send_payload": webhook.send_payload,
        "send_for_all_actions": webhook.send_for_all_actions,
        "headers": webhook.headers or {},
        "is_active": webhook.is_active,
        "actions": webhook.actions or [],
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
    }


def _webhooks_visible_to(actor: Actor, queryset):
    in_projects = Q(project__in=access.projects_permitting(actor, "webhooks.view").values("pk"))
    if can(actor, "webhooks.view"):  # organization-wide webhooks: the organization role decides
        return queryset.filter(in_projects | Q(project__isnull=True))
    return queryset.filter(in_projects)


class WebhookListCreateApi(LabelingApi):
    permissions = {"GET": "webhooks.view", "POST": "webhooks.change"}

    def get(self, request):
        project_id = query_int(request, "project")
        found = _webhooks_visible_to(self.actor, webhooks.webhooks_list(project_id=project_id))
        return Response([webhook_payload(w) for w in found])

    def post(self, request):
        serializer = WebhookInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        project_id = fields.pop("project", None)
        if project_id is None:
            require(self.actor, "webhooks.change")
        elif not Project.objects.filter(pk=project_id).exists():
            raise ValidationError({"project": "No project with this id in this organization."})
        else:
            _project_or_404(self.actor, project_id, permission="webhooks.change")
        webhook, secret = webhooks.webhook_create(project_id=project_id, fields=fields)
        return Response({**webhook_payload(webhook), "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailApi(LabelingApi):
    permissions = {"GET": "webhooks.view", "PATCH": "webhooks.change", "PUT": "webhooks.change",
                   "DELETE": "webhooks.change"}

    def _get(self, pk, permission: str) -> Webhook:
        return object_or_404(self.actor, Webhook.objects.select_related("project"), permission=permission, pk=pk)

    def get(self, request, pk):
        return Response(webhook_payload(self._get(pk, "webhooks.view")))

    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    def _update(self, request, pk, *, partial: bool):
        webhook = self._get(pk, "webhooks.change")
        serializer = WebhookInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        fields.pop("project", None)  # read-only on update, as Label Studio's WebhookSerializerForUpdate
        return Response(webhook_payload(webhooks.webhook_update(webhook=webhook, fields=fields)))

    def delete(self, request, pk):
        webhooks.webhook_delete(webhook=self._get(pk, "webhooks.change"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookInfoApi(LabelingApi):
    """The actions a webhook can subscribe to. `?organization-only=true|false` keeps those that are
    (or are not) for organization-wide webhooks only. Fixed facts, no webhook's data: any member."""

    permissions = {"GET": "organizations.view"}

    def get(self, request):
        actions = webhooks.ACTIONS
        if request.query_params.get("organization-only") not in (None, ""):
            wanted = query_bool(request, "organization-only")
            actions = {key: info for key, info in actions.items() if info["organization-only"] == wanted}
        return Response(actions)


urlpatterns = [
    route(r"webhooks", WebhookListCreateApi),
    route(r"webhooks/info", WebhookInfoApi),
    route(r"webhooks/(?P<pk>\d+)", WebhookDetailApi),
]
