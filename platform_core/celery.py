"""The Celery app. Tasks that touch a tenant take the organization explicitly (ARCHITECTURE.md, Jobs)."""

import os

from celery.signals import worker_process_init
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")

app = CeleryApp("scriptorium")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _drop_inherited_database_pool(**kwargs):
    """A forked worker must not share the parent's pooled sockets: start with a pool of its own."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None:
            close_pool()
