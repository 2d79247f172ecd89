from django.contrib import admin

from tenants.models import Domain, Organization, WarmSchema


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "schema_name", "created_at", "deleted_at")
    search_fields = ("slug", "title")
    readonly_fields = ("schema_name", "created_at")


admin.site.register(Domain)
admin.site.register(WarmSchema)
