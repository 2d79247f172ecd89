"""Settings, root URLconfs, ASGI/WSGI, the Celery app and the embedded-services launcher."""

from platform_core.celery import app as celery_app

__all__ = ["celery_app"]
