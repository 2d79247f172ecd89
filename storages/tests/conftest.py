"""Fixtures of the storages tests: the real local servers (moto's S3, fake-gcs-server, Azurite),
started once per session on first use, and Celery run eagerly where a test follows a job."""

import pytest

from platform_core.celery import app as celery_app
from storages.tests.servers_azure import azure_server, azure_settings  # noqa: F401 - fixtures
from storages.tests.servers_gcs import gcs_server, gcs_settings  # noqa: F401 - fixtures
from storages.tests.servers_s3 import s3_server  # noqa: F401 - fixtures


@pytest.fixture
def eager_celery():
    """Celery jobs queued by the test run in its thread (on-commit callbacks send them)."""
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved
