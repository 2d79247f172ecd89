"""`make run`: services, migrations, the demo organization, then daphne and a Celery worker.

Ctrl-C stops everything this started. A second run reuses .venv and .data/ and is up in seconds.
"""

import os
import secrets
import signal
import subprocess
import sys
import time

from platform_core.embedded import BASE_DIR, EmbeddedServices

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.scriptorium.local"


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()


def ensure_demo_organization() -> None:
    from accounts import services
    from accounts.models import User
    from tenants.models import Organization

    if Organization.objects.filter(slug=DEMO_SLUG).exists():
        print(f"Demo organization: http://127.0.0.1:{_port()}/o/{DEMO_SLUG}/ (owner {DEMO_EMAIL}; "
              "password was printed on the first run, reset it with `manage.py bootstrap`)")
        return
    password = secrets.token_urlsafe(12)
    user = User.objects.filter(email=DEMO_EMAIL).first() or services.user_create(
        email=DEMO_EMAIL, password=password, first_name="Demo", last_name="Owner"
    )
    services.organization_create_with_owner(user=user, title="Demo", slug=DEMO_SLUG)
    bar = "=" * 72
    print(f"\n{bar}\nDemo organization created (these credentials are shown only once):\n"
          f"  URL:      http://127.0.0.1:{_port()}/o/{DEMO_SLUG}/\n"
          f"  email:    {DEMO_EMAIL}\n  password: {password}\n{bar}\n", flush=True)


def _port() -> str:
    return os.environ.get("PORT", "8000")


def main() -> int:
    services = EmbeddedServices()
    services.ensure()
    children: list[subprocess.Popen] = []
    try:
        _django_setup()
        from django.core.management import call_command

        call_command("migrate_schemas", interactive=False, verbosity=0)
        ensure_demo_organization()
        python = sys.executable
        env = {**os.environ}
        children.append(subprocess.Popen(  # noqa: S603
            # WARNING by default: at INFO the lock sweeper alone writes two lines every 5 seconds.
            [python, "-m", "celery", "-A", "platform_core", "worker", "--beat",
             f"--loglevel={os.environ.get('CELERY_LOG_LEVEL', 'WARNING')}",
             "--concurrency=2", "--schedule", str(BASE_DIR / ".data" / "celerybeat-schedule")],
            cwd=BASE_DIR, env=env,
        ))
        children.append(subprocess.Popen(  # noqa: S603
            [python, "-m", "daphne", "-b", "127.0.0.1", "-p", _port(), "platform_core.asgi:application"],
            cwd=BASE_DIR, env=env,
        ))
        print(f"Serving on http://127.0.0.1:{_port()}/  (Ctrl-C stops everything)", flush=True)
        stopping = []
        # Ctrl-C reaches the children too (same process group); the parent only has to notice.
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        if stopping:
            return 0
        return next(child.returncode for child in children if child.poll() is not None) or 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        services.stop()


if __name__ == "__main__":
    sys.exit(main())
