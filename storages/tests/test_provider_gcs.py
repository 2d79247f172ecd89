"""GCSProvider against a real fake-gcs-server (storages/tests/servers_gcs.py): validation and its
errors, listing 1,000 objects page by page, read/write/delete, V4 signed URLs. No database."""

import json
import time
import uuid

import pytest
import requests
from django.test import override_settings

from conftest import _free_port
from storages.providers.base import StorageError
from storages.providers.gcs import GCSProvider

# The fixtures gcs_server and gcs_settings.


def _provider(server, bucket: str, **secrets) -> GCSProvider:
    return GCSProvider(options=server.options(bucket), secrets={**server.secrets(), **secrets})


@pytest.fixture
def bucket(gcs_settings):
    return gcs_settings.make_bucket(f"b-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def thousand_objects(gcs_server):
    """A bucket of 1,000 objects: 10 at the root, 90 in docs/, 900 in docs/2024/<month>/ (12 months)."""
    name = gcs_server.make_bucket(f"thousand-{uuid.uuid4().hex[:8]}")
    keys = [f"root-{i}.json" for i in range(10)]
    keys += [f"docs/task-{i}.json" for i in range(90)]
    keys += [f"docs/2024/{i % 12 + 1:02d}/task-{i}.json" for i in range(900)]
    gcs_server.put_many(name, {key: b"{}" for key in keys})
    return name, keys


def test_validate_accepts_a_bucket_the_key_can_list(gcs_settings, bucket):
    _provider(gcs_settings, bucket).validate()


def test_validate_names_the_bucket_when_it_does_not_exist(gcs_settings):
    with pytest.raises(StorageError) as caught:
        _provider(gcs_settings, "no-such-bucket-here").validate()
    assert caught.value.field == "bucket"
    assert "no-such-bucket-here" in caught.value.detail


def test_validate_requires_a_bucket_name(gcs_settings):
    with pytest.raises(StorageError) as caught:
        _provider(gcs_settings, "").validate()
    assert caught.value.field == "bucket"


@pytest.mark.parametrize("credentials", [
    "{not json",
    "",
    json.dumps({"type": "authorized_user", "client_id": "x", "refresh_token": "y"}),
    json.dumps({"type": "service_account", "client_email": "a@b.test", "private_key": "not a PEM key"}),
], ids=["invalid-json", "empty", "not-a-service-account", "unreadable-private-key"])
def test_bad_credentials_name_the_credentials_field_without_echoing_them(gcs_settings, bucket, credentials):
    provider = _provider(gcs_settings, bucket, google_application_credentials=credentials)
    with pytest.raises(StorageError) as caught:
        provider.validate()
    assert caught.value.field == "google_application_credentials"
    for secret_part in ("refresh_token", "not a PEM key", "{not json"):
        assert secret_part not in caught.value.detail


def test_the_real_service_account_key_is_never_in_an_error(gcs_settings):
    with pytest.raises(StorageError) as caught:
        _provider(gcs_settings, "missing-bucket-2").validate()
    private_key = json.loads(gcs_settings.credentials_json)["private_key"]
    assert private_key.splitlines()[1] not in str(caught.value)


def test_listing_a_thousand_objects_recursive_and_not(gcs_settings, thousand_objects):
    name, keys = thousand_objects
    provider = _provider(gcs_settings, name)

    started = time.monotonic()
    everything = list(provider.keys(prefix="", recursive=True))
    elapsed = time.monotonic() - started
    # 1,000 names in one page of the JSON API; about 0.05 s against fake-gcs-server here.
    print(f"listed {len(everything)} GCS objects in {elapsed:.3f}s")
    assert sorted(everything) == sorted(keys)

    assert len(list(provider.keys(prefix="", recursive=False))) == 10
    assert len(list(provider.keys(prefix="docs", recursive=False))) == 90
    assert len(list(provider.keys(prefix="docs/", recursive=False))) == 90
    assert len(list(provider.keys(prefix="docs", recursive=True))) == 990
    assert len(list(provider.keys(prefix="docs/", recursive=True))) == 990
    march = list(provider.keys(prefix="docs/2024/03", recursive=False))
    assert len(march) == 75 and all(key.startswith("docs/2024/03/task-") for key in march)
    # "doc" is the folder doc/, not a string prefix of docs/.
    assert list(provider.keys(prefix="doc", recursive=True)) == []


def test_listing_is_paginated_and_lazy(gcs_settings, thousand_objects, monkeypatch):
    name, _keys = thousand_objects
    monkeypatch.setattr("storages.providers.gcs.PAGE_SIZE", 100)
    provider = _provider(gcs_settings, name)
    listing = provider.keys(prefix="docs/2024", recursive=True)
    first = [next(listing) for _ in range(5)]
    assert len(first) == 5
    assert len(first) + len(list(listing)) == 900


def test_write_read_overwrite_delete(gcs_settings, bucket):
    provider = _provider(gcs_settings, bucket)
    provider.write("exports/1.json", b'{"id": 1}')
    assert provider.read("exports/1.json") == b'{"id": 1}'
    provider.write("exports/1.json", b'{"id": 1, "v": 2}')
    assert provider.read("exports/1.json") == b'{"id": 1, "v": 2}'
    assert list(provider.keys(prefix="exports", recursive=False)) == ["exports/1.json"]

    provider.delete("exports/1.json")
    provider.delete("exports/1.json")  # missing: no error
    assert list(provider.keys(prefix="exports", recursive=True)) == []
    with pytest.raises(StorageError) as caught:
        provider.read("exports/1.json")
    assert "exports/1.json" in caught.value.detail


def test_write_keeps_the_content_type(gcs_settings, bucket):
    provider = _provider(gcs_settings, bucket)
    provider.write("scans/page.png", b"\x89PNG...", content_type="image/png")
    response = gcs_settings.session.get(f"{gcs_settings.endpoint}/storage/v1/b/{bucket}/o/scans%2Fpage.png",
                                        timeout=10)
    assert response.json()["contentType"] == "image/png"


def test_uris_round_trip(gcs_settings, bucket):
    provider = _provider(gcs_settings, bucket)
    assert provider.uri("a/b.json") == f"gs://{bucket}/a/b.json"
    assert provider.key_of(f"gs://{bucket}/a/b.json") == "a/b.json"
    assert provider.key_of("gs://another-bucket/a/b.json") is None
    assert provider.key_of(f"s3://{bucket}/a/b.json") is None


def test_signed_url_loads_the_object_from_the_emulator(gcs_settings, bucket):
    provider = _provider(gcs_settings, bucket)
    provider.write("images/scan 1.png", b"\x89PNG-bytes", content_type="image/png")
    url = provider.presigned_url("images/scan 1.png", ttl_seconds=600)
    assert url.startswith(f"{gcs_settings.endpoint}/{bucket}/images/scan%201.png?")
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in url and "X-Goog-Expires=600" in url
    assert "X-Goog-Signature=" in url
    # fake-gcs-server does not check the signature (nor the expiry): this proves the URL's shape
    # and that a browser gets the bytes; Azurite's tests prove that an expired URL is refused.
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"\x89PNG-bytes"


def test_an_unreachable_endpoint_is_a_clear_error(gcs_server, monkeypatch):
    monkeypatch.setattr("storages.providers.gcs.RETRY_TIMEOUT", 0.5)
    with override_settings(GCS_API_ENDPOINT=f"http://127.0.0.1:{_free_port()}"), \
            pytest.raises(StorageError) as caught:
        _provider(gcs_server, "any-bucket").validate()
    assert "could not be reached" in caught.value.detail


def test_without_an_endpoint_google_is_used_with_the_service_account(gcs_server):
    """Offline: building the client and signing need no request (the token is fetched on first call)."""
    from google.oauth2 import service_account

    with override_settings(GCS_API_ENDPOINT=""):
        provider = _provider(gcs_server, "prod-bucket")
        assert isinstance(provider._storage_client()._credentials, service_account.Credentials)
        url = provider.presigned_url("a/b.json", ttl_seconds=60)
    assert url.startswith("https://storage.googleapis.com/prod-bucket/a/b.json?")
    assert "X-Goog-Credential=scriptorium-tests%40" in url
