"""Provisioning takes a pool schema or clones the template; never replays migrations; never half-creates."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_exists

from tenants import services
from tenants.models import Organization, WarmSchema
from tenants.tasks import purge_deleted_organizations, refill_warm_pool

pytestmark = pytest.mark.django_db


def _applied_migrations(schema: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')
        return set(cursor.fetchall())


def test_new_organization_takes_a_warm_schema_by_renaming_it(world):
    services.warm_pool_refill(target_size=1)
    warm = WarmSchema.objects.order_by("id").first()
    before = WarmSchema.objects.count()

    organization = services.organization_create(title="Pool Corp", slug="pool-corp")

    assert organization.schema_name == "org_pool_corp"
    assert schema_exists("org_pool_corp")
    assert not schema_exists(warm.schema_name), "the pool schema was renamed, not copied"
    assert WarmSchema.objects.count() == before - 1
    assert _applied_migrations("org_pool_corp") == _applied_migrations(services.template_schema_name())


def test_empty_pool_falls_back_to_cloning_the_template(world):
    WarmSchema.objects.all().delete()  # rows only; the test transaction restores them

    organization = services.organization_create(title="Clone Corp", slug="clone-corp")

    assert schema_exists(organization.schema_name)
    assert _applied_migrations(organization.schema_name) == _applied_migrations(services.template_schema_name())


def test_refill_task_fills_the_pool_to_its_target(world, settings):
    settings.TENANT_WARM_POOL_SIZE = WarmSchema.objects.count() + 2
    created = refill_warm_pool.apply().get()
    assert created == 2
    assert WarmSchema.objects.count() == settings.TENANT_WARM_POOL_SIZE
    assert all(schema_exists(name) for name in WarmSchema.objects.values_list("schema_name", flat=True))


@pytest.mark.parametrize(
    ("slug", "message"),
    [("org-a", "already taken"), ("api", "reserved"), ("-bad-", "lowercase letters"), ("Has Space", "lowercase")],
)
def test_bad_slug_is_refused_and_nothing_is_created(world, slug, message):
    organizations, pool = Organization.objects.count(), WarmSchema.objects.count()
    with pytest.raises(ValidationError) as caught:
        services.organization_create(title="Whatever", slug=slug)
    assert message in str(caught.value.message_dict["slug"])
    assert Organization.objects.count() == organizations
    assert WarmSchema.objects.count() == pool


def test_title_without_slug_gets_a_free_slug(world):
    organization = services.organization_create(title="Org A")
    assert organization.slug == "org-a-2"


def test_soft_deleted_organization_is_gone_from_routing_and_purged_after_grace(world, client, settings):
    organization = services.organization_create(title="Doomed", slug="doomed")
    services.organization_soft_delete(organization=organization)

    assert client.get("/o/doomed/").status_code == 404
    assert schema_exists("org_doomed"), "the schema survives the grace period"
    assert services.organizations_purge_expired() == []

    Organization.objects.filter(pk=organization.pk).update(
        deleted_at=timezone.now() - settings.ORGANIZATION_DELETION_GRACE - timezone.timedelta(minutes=1)
    )
    assert purge_deleted_organizations.apply().get() == ["org_doomed"]
    assert not schema_exists("org_doomed")
    assert not Organization.objects.filter(pk=organization.pk).exists()


def test_concurrent_signups_for_one_address_create_one_organization(world, django_db_blocker):
    """Two requests racing for the same slug: one wins, the other gets the 'taken' error, no orphans."""
    import threading

    from django.db import connections

    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def attempt():
        try:
            with django_db_blocker.unblock():
                barrier.wait()
                try:
                    services.organization_create(title="Race", slug="race")
                    outcomes.append("created")
                except ValidationError as exc:
                    outcomes.append(" ".join(exc.message_dict["slug"]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert outcomes.count("created") == 1, outcomes
        assert any("already taken" in outcome for outcome in outcomes), outcomes
        assert Organization.objects.filter(slug="race").count() == 1
    finally:
        with django_db_blocker.unblock():
            for organization in Organization.objects.filter(slug="race"):
                organization.delete(force_drop=True)
