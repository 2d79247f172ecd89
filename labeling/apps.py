from django.apps import AppConfig


class LabelingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "labeling"

    def ready(self):
        from labeling import access  # noqa: F401  (registers the object rules of accounts.access.can)
