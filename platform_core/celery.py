"""The Celery app. Tasks that touch a tenant take the organization explicitly (ARCHITECTURE.md, Jobs)."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")

app = CeleryApp("scriptorium")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
