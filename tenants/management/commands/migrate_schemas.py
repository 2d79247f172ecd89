"""migrate_schemas that also keeps the template schema and the warm pool current.

Organizations are provisioned from the template (clone) or the pool (rename), so both must be at
the latest tenant migration whenever tenants are. Schemas that already hold every tenant
migration are skipped, so a deploy with nothing to apply costs one query per schema.
"""

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_tenants.management.commands import SyncCommon
from django_tenants.management.commands.migrate_schemas import GET_EXECUTOR_FUNCTION, MigrateSchemasCommand
from django_tenants.utils import get_public_schema_name, get_tenant_model, quote_schema_name

from tenants import services
from tenants.models import WarmSchema


class Command(MigrateSchemasCommand):
    def handle(self, *args, **options):
        if options.get("schema_name"):
            return super().handle(*args, **options)
        SyncCommon.handle(self, *args, **options)
        public = get_public_schema_name()
        executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
        if self.sync_public:
            executor.run_migrations(tenants=[public])
        if self.sync_tenant:
            connection.set_schema_to_public()
            services.template_schema_ensure()
            schemas = self._tenant_schemas()
            if not (self.options.get("app_label") or self.options.get("fake")):
                schemas = [schema for schema in schemas if not self._holds_every_migration(schema)]
            if schemas:
                executor.run_migrations(tenants=schemas)

    def _tenant_schemas(self) -> list[str]:
        schemas = [services.template_schema_name()]
        schemas += WarmSchema.objects.values_list("schema_name", flat=True)
        schemas += (
            get_tenant_model().objects.exclude(schema_name=get_public_schema_name())
            .values_list("schema_name", flat=True)
        )
        return schemas

    def _holds_every_migration(self, schema: str) -> bool:
        if not hasattr(self, "_wanted"):
            labels = {apps.get_app_config(name.rsplit(".", 1)[-1]).label for name in settings.TENANT_APPS}
            graph = MigrationLoader(None, ignore_no_migrations=True).graph
            self._wanted = {key for key in graph.nodes if key[0] in labels}
        table = f"{quote_schema_name(schema)}.django_migrations"
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is None:
                return False
            cursor.execute(f"SELECT app, name FROM {table}")  # noqa: S608 - quoted identifier
            return self._wanted <= set(cursor.fetchall())
