"""Celery jobs of the realtime server."""

from celery import shared_task


@shared_task(name="realtime.sweep_expired_locks")
def sweep_expired_locks() -> int:
    """Beat job (REALTIME_LOCK_SWEEP_SECONDS): announce and remove expired task locks."""
    from realtime.locks import expired_locks_sweep

    return expired_locks_sweep()
