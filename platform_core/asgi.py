"""ASGI entry point (daphne). HTTP goes through Django; websockets join in the realtime issue."""

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")
django_asgi_app = get_asgi_application()

application = ProtocolTypeRouter({"http": django_asgi_app})
