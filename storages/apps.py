from django.apps import AppConfig


class StoragesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "storages"

    def ready(self):
        from labeling.access import register_in_project
        from storages.models import Storage

        register_in_project(Storage)
