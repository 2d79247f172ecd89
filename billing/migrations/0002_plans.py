"""The plans a new installation offers. Rows, not code: change them in the admin or with a later
data migration (Stripe price ids per deployment: `stripe_price_id`)."""

from django.db import migrations

PLANS = [
    {"code": "trial", "title": "Free trial", "sort_order": 0, "trial_days": 14, "is_signup_default": True,
     "description": "Everything a small team needs to try Scriptorium, for 14 days.",
     "projects": 3, "seats": 5, "results": 1000, "import_storages": 1, "export_storages": 1,
     "features": {"activity_log": True, "webhooks": True, "storage_proxy": True, "reviewing": True}},
    {"code": "free", "title": "Free", "sort_order": 1, "is_fallback": True, "is_public": False,
     "description": "After a trial or a cancelled subscription: one project, read and export the rest.",
     "projects": 1, "seats": 3, "results": 500, "import_storages": 0, "export_storages": 0,
     "features": {"activity_log": False, "webhooks": False, "storage_proxy": False, "reviewing": False}},
    {"code": "team", "title": "Team", "sort_order": 2, "price_cents": 9900,
     "description": "Growing labeling teams: cloud storages, webhooks, reviews.",
     "projects": 50, "seats": 25, "results": 100000, "import_storages": 10, "export_storages": 10,
     "features": {"activity_log": True, "webhooks": True, "storage_proxy": True, "reviewing": True}},
    {"code": "enterprise", "title": "Enterprise", "sort_order": 3, "price_cents": 49900,
     "description": "No limits; single sign-on (SAML) and SCIM provisioning.",
     "projects": None, "seats": None, "results": None, "import_storages": None, "export_storages": None,
     "features": {"activity_log": True, "webhooks": True, "storage_proxy": True, "reviewing": True, "sso": True,
                  "scim": True}},
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for fields in PLANS:
        code = fields["code"]
        Plan.objects.update_or_create(code=code, defaults={key: value for key, value in fields.items() if key != "code"})


def unseed(apps, schema_editor):
    apps.get_model("billing", "Plan").objects.filter(code__in=[plan["code"] for plan in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
