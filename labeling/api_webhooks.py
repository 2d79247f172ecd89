"""Webhooks API (Label Studio's /api/webhooks/): Owner, Administrator and Manager only, reads too
(a webhook's headers often carry the receiver's credentials). Signing is described in
labeling/webhooks.py; the signing secret appears once, as `secret`, in the creation response."""

from django.db import connection
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import role_required
from labeling import webhooks
from labeling.api import MANAGERS, LabelingApi, query_bool, query_int
from labeling.models import Webhook
from platform_core.routing import route

ManagersOnly = role_required(MANAGERS, "Only an Owner, Administrator or Manager can see webhooks.")


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


class WebhookListCreateApi(LabelingApi):
    permission_classes = [ManagersOnly]

    def get(self, request):
        project_id = query_int(request, "project")
        return Response([webhook_payload(w) for w in webhooks.webhooks_list(project_id=project_id)])

    def post(self, request):
        serializer = WebhookInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        project_id = fields.pop("project", None)
        webhook, secret = webhooks.webhook_create(project_id=project_id, fields=fields)
        return Response({**webhook_payload(webhook), "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailApi(LabelingApi):
    permission_classes = [ManagersOnly]

    def get(self, request, pk):
        return Response(webhook_payload(get_object_or_404(Webhook, pk=pk)))

    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    def _update(self, request, pk, *, partial: bool):
        webhook = get_object_or_404(Webhook, pk=pk)
        serializer = WebhookInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        fields.pop("project", None)  # read-only on update, as Label Studio's WebhookSerializerForUpdate
        return Response(webhook_payload(webhooks.webhook_update(webhook=webhook, fields=fields)))

    def delete(self, request, pk):
        webhooks.webhook_delete(webhook=get_object_or_404(Webhook, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookInfoApi(APIView):
    """The actions a webhook can subscribe to. `?organization-only=true|false` keeps those that are
    (or are not) for organization-wide webhooks only."""

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
