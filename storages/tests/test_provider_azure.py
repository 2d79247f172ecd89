"""The Azure Blob provider against Azurite (storages/tests/servers_azure.py): validation and the
option each failure names, listing 1,000 blobs page by page, read/write/delete, and SAS URLs that
Azurite honours until they expire and refuses once tampered with. No database is needed."""

from __future__ import annotations

import functools
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

from conftest import _free_port
from storages.providers import azure as azure_module
from storages.providers import provider_for
from storages.providers.base import StorageError
from storages.tests.servers_azure import DEV_ACCOUNT_KEY

# 1,000 blobs: a few at the top, the rest in nested folders, and a sibling folder ("database/")
# that a prefix "data" must not match.
LAYOUT = {"": 10, "data/": 190, "data/nested/": 400, "data/nested/deeper/": 300, "database/": 100}
FOLDER_MARKER = "data/nested/"  # a zero-length "folder" blob, as the Azure portal makes


def _unique_container() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


def _provider(server, container: str, *, secrets: dict | None = None, **options):
    return provider_for(kind="azure", options={**server.options(container), **options},
                        secrets=server.secrets() if secrets is None else secrets)


def _error_of(call) -> StorageError:
    with pytest.raises(StorageError) as caught:
        call()
    assert DEV_ACCOUNT_KEY not in caught.value.detail
    return caught.value


@pytest.fixture
def container(azure_settings):  # noqa: F811 - the fixture imported above
    return azure_settings.make_container(_unique_container())


@pytest.fixture(scope="module")
def listed_container(azure_server):  # noqa: F811
    name = azure_server.make_container(_unique_container())
    blobs = {f"{folder}{index:03}.json": b"{}" for folder, count in LAYOUT.items() for index in range(count)}
    assert len(blobs) == 1000
    started = time.perf_counter()
    azure_server.put_many(name, {**blobs, FOLDER_MARKER: b""})
    print(f"\nuploading 1,000 blobs to Azurite: {time.perf_counter() - started:.2f} s")
    return name


# --- validation --------------------------------------------------------------------------------

def test_validate_accepts_an_existing_container(azure_settings, container):  # noqa: F811
    _provider(azure_settings, container).validate()


def test_missing_container_names_the_container(azure_settings):  # noqa: F811
    error = _error_of(_provider(azure_settings, _unique_container()).validate)
    assert error.field == "container"
    assert "has no container" in error.detail


def test_wrong_account_key_names_the_account_key(azure_settings, container):  # noqa: F811
    # A well-formed key of another account: Azurite checks the Shared Key signature and refuses it.
    other_key = "A" * 86 + "=="
    error = _error_of(_provider(azure_settings, container, secrets={"account_key": other_key}).validate)
    assert error.field == "account_key"
    assert other_key not in error.detail


def test_missing_credentials_name_the_account_key(azure_settings, container):  # noqa: F811
    assert _error_of(_provider(azure_settings, container, secrets={}).validate).field == "account_key"


def test_malformed_account_key_is_refused_before_any_request(azure_settings, container):  # noqa: F811
    error = _error_of(_provider(azure_settings, container, secrets={"account_key": "not base64!"}).validate)
    assert error.field == "account_key"


@pytest.mark.parametrize("account_name", ["", "UPPER", "ab", "evil.example/x?", "a" * 25])
def test_invalid_account_name_is_refused(azure_settings, container, account_name):  # noqa: F811
    # The name goes into the endpoint's host: only Azure's own account names are accepted.
    error = _error_of(_provider(azure_settings, container, account_name=account_name).validate)
    assert error.field == "account_name"


@pytest.mark.parametrize("name", ["", "Upper", "ab", "a--b", "-ab", "a/b"])
def test_invalid_container_name_is_refused(azure_settings, name):  # noqa: F811
    assert _error_of(_provider(azure_settings, name).validate).field == "container"


def test_unreachable_endpoint_names_the_account(azure_settings, container, settings):  # noqa: F811
    settings.AZURE_BLOB_ENDPOINT = f"http://127.0.0.1:{_free_port()}/{{account_name}}"
    error = _error_of(_provider(azure_settings, container).validate)
    assert error.field == "account_name"
    assert "could not be reached" in error.detail


# --- listing -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("prefix", "recursive", "expected"), [
    ("", True, 1000),
    ("", False, 10),
    ("data", True, 890),
    ("data/", True, 890),
    ("data", False, 190),
    ("data/", False, 190),
    ("/data/", False, 190),
    ("data/nested", True, 700),
    ("data/nested/", False, 400),
    ("data/nested/deeper", True, 300),
    ("data/nested/deeper/", False, 300),
    ("database", False, 100),
    ("dat", True, 0),
    ("missing", True, 0),
])
def test_keys_counts(azure_settings, listed_container, prefix, recursive, expected):  # noqa: F811
    keys = list(_provider(azure_settings, listed_container).keys(prefix=prefix, recursive=recursive))
    assert len(keys) == len(set(keys)) == expected
    folder = prefix.strip("/") + "/" if prefix.strip("/") else ""
    assert all(key.startswith(folder) and not key.endswith("/") for key in keys)
    if not recursive:
        assert all("/" not in key[len(folder):] for key in keys)


def test_keys_are_full_names(azure_settings, listed_container):  # noqa: F811
    keys = set(_provider(azure_settings, listed_container).keys(prefix="data/nested", recursive=False))
    assert "data/nested/000.json" in keys
    assert "data/nested/deeper/000.json" not in keys


def test_keys_follow_continuation_pages(azure_settings, listed_container, monkeypatch):  # noqa: F811
    # Ten pages of 100 names each: the counts hold across the service's continuation tokens.
    monkeypatch.setattr(azure_module, "PAGE_SIZE", 100)
    provider = _provider(azure_settings, listed_container)
    assert sum(1 for _ in provider.keys(prefix="", recursive=True)) == 1000
    assert sum(1 for _ in provider.keys(prefix="data/nested", recursive=False)) == 400


def test_keys_are_lazy(azure_settings, listed_container, monkeypatch):  # noqa: F811
    # The real client, with a hook that sees every response: the first ten keys cost one page.
    monkeypatch.setattr(azure_module, "PAGE_SIZE", 10)
    listings = []
    monkeypatch.setattr(azure_module, "ContainerClient", functools.partial(
        ContainerClient, raw_response_hook=lambda response: listings.append(response.http_request.url)))
    keys = _provider(azure_settings, listed_container).keys(prefix="", recursive=True)
    assert len([next(keys) for _ in range(10)]) == 10
    assert len(listings) == 1 and "comp=list" in listings[0]
    assert len(list(keys)) == 990
    assert len(listings) == 101  # 1,001 blobs (the folder marker too), ten a page


def test_listing_1000_blobs_timing(azure_settings, listed_container):  # noqa: F811
    provider = _provider(azure_settings, listed_container)
    for recursive in (True, False):
        started = time.perf_counter()
        count = sum(1 for _ in provider.keys(prefix="", recursive=recursive))
        print(f"\nlisting {'recursively' if recursive else 'the top level'} ({count} keys): "
              f"{time.perf_counter() - started:.3f} s")


def test_keys_of_a_missing_container_name_the_container(azure_settings):  # noqa: F811
    provider = _provider(azure_settings, _unique_container())
    assert _error_of(lambda: list(provider.keys(prefix="", recursive=True))).field == "container"


# --- objects -----------------------------------------------------------------------------------

def test_write_read_delete(azure_settings, container):  # noqa: F811
    provider = _provider(azure_settings, container)
    provider.write("exports/1.json", b'{"id": 1}')
    provider.write("exports/2.txt", "é".encode(), content_type="text/plain; charset=utf-8")
    assert provider.read("exports/1.json") == b'{"id": 1}'
    properties = azure_settings.container_client(container).get_blob_client("exports/2.txt").get_blob_properties()
    assert properties.content_settings.content_type == "text/plain; charset=utf-8"
    provider.write("exports/1.json", b"{}")  # overwrite
    assert provider.read("exports/1.json") == b"{}"
    assert sorted(provider.keys(prefix="exports", recursive=False)) == ["exports/1.json", "exports/2.txt"]
    provider.delete("exports/1.json")
    provider.delete("exports/1.json")  # missing: no error
    assert list(provider.keys(prefix="exports", recursive=True)) == ["exports/2.txt"]
    error = _error_of(lambda: provider.read("exports/1.json"))
    assert error.field is None
    assert "no blob" in error.detail


def test_names_with_spaces_and_unicode(azure_settings, container):  # noqa: F811
    provider = _provider(azure_settings, container)
    key = "scans/été 2024/page #1?.json"
    provider.write(key, b"[]")
    assert list(provider.keys(prefix="scans/été 2024", recursive=False)) == [key]
    assert provider.read(key) == b"[]"
    assert requests.get(provider.presigned_url(key, ttl_seconds=60), timeout=5).content == b"[]"


def test_delete_in_a_missing_container_names_the_container(azure_settings):  # noqa: F811
    provider = _provider(azure_settings, _unique_container())
    assert _error_of(lambda: provider.delete("a.json")).field == "container"


def test_uri_round_trip(azure_settings, container):  # noqa: F811
    provider = _provider(azure_settings, container)
    assert provider.uri("a/b.json") == f"azure-blob://{container}/a/b.json"
    assert provider.key_of(f"azure-blob://{container}/a/b.json") == "a/b.json"
    assert provider.key_of("azure-blob://another-container/a/b.json") is None
    assert provider.key_of(f"s3://{container}/a/b.json") is None


# --- presigned URLs ------------------------------------------------------------------------------

def _with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def _flip(character: str) -> str:
    return "B" if character != "B" else "C"


def test_sas_url_serves_the_blob(azure_settings, container):  # noqa: F811
    provider = _provider(azure_settings, container)
    provider.write("doc.json", b'{"text": "hello"}')
    url = provider.presigned_url("doc.json", ttl_seconds=60)
    assert DEV_ACCOUNT_KEY not in url
    response = requests.get(url, timeout=5)
    assert response.status_code == 200
    assert response.content == b'{"text": "hello"}'
    assert requests.get(url.split("?", 1)[0], timeout=5).status_code in (403, 404)  # unsigned: refused
    # Read only: the same signature does not let anyone overwrite the blob.
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=5).status_code == 403


def test_sas_url_expires(azure_settings, container):  # noqa: F811
    provider = _provider(azure_settings, container)
    provider.write("doc.json", b"{}")
    # Azure's expiry has a one-second grain: with 2 s the URL is valid for at least 1 s from now.
    url = provider.presigned_url("doc.json", ttl_seconds=2)
    assert requests.get(url, timeout=5).status_code == 200
    expiry = datetime.fromisoformat(parse_qs(urlsplit(url).query)["se"][0].replace("Z", "+00:00"))
    time.sleep(max((expiry - datetime.now(UTC)).total_seconds(), 0) + 1.5)
    assert requests.get(url, timeout=5).status_code == 403


def test_tampered_sas_urls_are_refused(azure_settings, container):  # noqa: F811
    provider = _provider(azure_settings, container)
    provider.write("doc.json", b"secret content")
    provider.write("dod.json", b"other content")
    url = provider.presigned_url("doc.json", ttl_seconds=60)
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tampered = {
        "signature": _with_query(url, sig=_flip(query["sig"][0]) + query["sig"][1:]),
        "blob name": url.replace("/doc.json?", "/dod.json?"),
        "expiry": _with_query(url, se=later),
        "permissions": _with_query(url, sp="rw"),
    }
    for what, tampered_url in tampered.items():
        assert tampered_url != url
        response = requests.get(tampered_url, timeout=5)
        assert response.status_code == 403, what
        assert b"content" not in response.content, what


def test_sas_token_instead_of_the_account_key(azure_settings, container):  # noqa: F811
    provider = _provider(azure_settings, container)
    provider.write("a/doc.json", b"[1]")
    now = datetime.now(UTC)
    token = generate_container_sas(
        account_name=azure_settings.account_name, container_name=container, account_key=azure_settings.account_key,
        permission=ContainerSasPermissions(read=True, list=True), start=now - timedelta(minutes=5),
        expiry=now + timedelta(hours=1),
    )
    with_token = _provider(azure_settings, container, secrets={"sas_token": f"?{token}"})
    with_token.validate()
    assert list(with_token.keys(prefix="a", recursive=False)) == ["a/doc.json"]
    assert with_token.read("a/doc.json") == b"[1]"
    url = with_token.presigned_url("a/doc.json", ttl_seconds=60)
    assert url.count("?") == 1
    assert requests.get(url, timeout=5).content == b"[1]"
    # The token allows no writes: Azure's refusal names the token.
    error = _error_of(lambda: with_token.write("b.json", b"{}"))
    assert error.field == "sas_token"
    assert token not in error.detail


def test_sas_token_without_list_permission_fails_validation(azure_settings, container):  # noqa: F811
    now = datetime.now(UTC)
    token = generate_container_sas(
        account_name=azure_settings.account_name, container_name=container, account_key=azure_settings.account_key,
        permission=ContainerSasPermissions(read=True), start=now - timedelta(minutes=5),
        expiry=now + timedelta(hours=1),
    )
    provider = _provider(azure_settings, container, secrets={"sas_token": token})
    assert _error_of(provider.validate).field == "sas_token"


def test_expired_sas_token_names_the_token(azure_settings, container):  # noqa: F811
    now = datetime.now(UTC)
    token = generate_container_sas(
        account_name=azure_settings.account_name, container_name=container, account_key=azure_settings.account_key,
        permission=ContainerSasPermissions(read=True, list=True), start=now - timedelta(hours=2),
        expiry=now - timedelta(hours=1),
    )
    provider = _provider(azure_settings, container, secrets={"sas_token": token})
    assert _error_of(provider.validate).field == "sas_token"
