"""POST /api/realtime/ticket: a one-use, short-lived ticket for a websocket (realtime/README.md)."""

from django.conf import settings
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import actor_of
from platform_core.routing import route
from realtime.tickets import ticket_issue


class RealtimeTicketApi(APIView):
    """Any API credential of the organization, or the session -> `{"ticket", "expires_in"}`; the
    ticket carries the credential's scopes."""

    permissions = {"POST": "projects.view"}

    def post(self, request):
        actor = actor_of(request)
        ticket = ticket_issue(user_id=actor.user.pk, organization_id=actor.organization_id, scopes=actor.scopes)
        return Response({"ticket": ticket, "expires_in": settings.REALTIME_TICKET_TTL_SECONDS},
                        status=status.HTTP_201_CREATED)


urlpatterns = [
    route("realtime/ticket", RealtimeTicketApi),
]
