"""The current time, in one place tests can move: monkeypatch `platform_core.clock.now`.

Callers must look it up at call time (`clock.now()`, not `from platform_core.clock import now`)
so a patched clock is seen everywhere.
"""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
