"""Websocket URLs, after realtime.auth stripped any `/o/<slug>` prefix (realtime/README.md)."""

from channels.routing import URLRouter
from django.urls import re_path

from realtime.auth import RealtimeAuthMiddleware
from realtime.consumers import ProjectStream, UserStream

websocket_urlpatterns = [
    re_path(r"^ws/projects/(?P<project_id>\d+)/?$", ProjectStream.as_asgi()),
    re_path(r"^ws/user/?$", UserStream.as_asgi()),
]

websocket_application = RealtimeAuthMiddleware(URLRouter(websocket_urlpatterns))
