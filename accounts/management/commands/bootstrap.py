"""`manage.py bootstrap --org SLUG --email E --password P [--token T]`: idempotent set-up for scripts.

Creates (or finds) the organization, its Owner and a legacy token (exactly T when given), and
prints one JSON line: {"org", "email", "token" (legacy key), "pat" (a fresh JWT refresh token)}.
"""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import Membership, Role, User
from tenants.models import Organization


class Command(BaseCommand):
    help = "Ensure an organization with an Owner and API tokens; prints one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--title", help="organization name (default: the slug)")
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--token", help="use exactly this legacy token")

    def handle(self, *args, **options):
        slug, email = options["org"].strip().lower(), options["email"].strip().lower()
        try:
            with transaction.atomic():
                user = User.objects.filter(email__iexact=email).first()
                if user is None:
                    user = services.user_create(email=email, password=options["password"])
                organization = Organization.objects.filter(slug=slug).first()
                if organization is None:
                    organization = services.organization_create_with_owner(
                        user=user, title=options["title"] or slug, slug=slug
                    )
                elif organization.deleted_at is not None:
                    raise CommandError(f"organization '{slug}' is deleted; restore it first")
                membership = Membership.objects.filter(user=user, organization=organization).first()
                if membership is None or membership.role != Role.OWNER:
                    services.membership_set(user=user, organization=organization, role=Role.OWNER)
                token = options["token"]
                if token is None or not services.legacy_token_matches(
                    user=user, organization=organization, key=token
                ):
                    token = services.legacy_token_issue(user=user, organization=organization, key=token)
                _, pat = services.personal_access_token_create(user=user, organization=organization)
        except ValidationError as exc:
            raise CommandError(json.dumps(exc.message_dict)) from exc
        self.stdout.write(json.dumps({"org": slug, "email": email, "token": token, "pat": pat}))
