"""Model fields shared by the tenant apps."""

from django.conf import settings
from django.db import models


def user_fk(related_name: str, **kwargs):
    """A tenant table's reference to a (public) user: no cross-schema constraint, no cascade
    (ARCHITECTURE.md, Tenancy); users are soft-deleted."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, db_constraint=False, on_delete=models.DO_NOTHING,
        related_name=related_name, **kwargs,
    )
