"""The S3 provider against a real S3 server (moto's): validation and its errors by field, listing
1,000 objects page by page, object round trips, presigned URLs, the SSRF guard on s3_endpoint, and
roles assumed through STS. No database."""

import time

import pytest
import requests

from conftest import _free_port
from storages.providers import provider_for
from storages.providers import s3 as s3_module
from storages.providers.base import StorageError
from storages.providers.s3 import S3Provider

# 1,000 objects: 10 at the top, 90 in a/, 400 in a/b/, 300 in a/b/c/, 200 in d/.
LAYOUT = {"": 10, "a/": 90, "a/b/": 400, "a/b/c/": 300, "d/": 200}


@pytest.fixture(autouse=True)
def s3_endpoint_allowed(settings, s3_server):  # noqa: F811
    settings.SSRF_PROTECTION_ALLOWLIST = [s3_server.allowlist]


@pytest.fixture
def bucket(s3_server):  # noqa: F811
    return s3_server.make_bucket()


@pytest.fixture(scope="module")
def thousand_objects_bucket(s3_server):  # noqa: F811
    bucket = s3_server.make_bucket()
    s3_server.put_many(bucket, {
        f"{folder}task-{index:04d}.json": b"{}" for folder, count in LAYOUT.items() for index in range(count)
    })
    return bucket


def provider(s3_server, bucket, *, secrets=None, **options):  # noqa: F811
    return S3Provider(options=s3_server.options(bucket, **options),
                      secrets=s3_server.secrets() if secrets is None else secrets)


# --- validation ----------------------------------------------------------------------------------

def test_validate_accepts_an_existing_bucket(s3_server, bucket):  # noqa: F811
    storage = provider_for(kind="s3", options=s3_server.options(bucket), secrets=s3_server.secrets())
    assert isinstance(storage, S3Provider)
    storage.validate()


def test_a_missing_bucket_is_the_bucket_fields_fault(s3_server):  # noqa: F811
    with pytest.raises(StorageError) as refused:
        provider(s3_server, "no-such-bucket").validate()
    assert refused.value.field == "bucket"
    assert "no-such-bucket" in refused.value.detail


def test_no_keys_is_refused_rather_than_using_the_servers_own_credentials(s3_server, bucket):  # noqa: F811
    with pytest.raises(StorageError) as refused:
        provider(s3_server, bucket, secrets={}).validate()
    assert refused.value.field == "aws_access_key_id"


def test_wrong_credentials_name_the_credential_at_fault(s3_server, bucket):  # noqa: F811
    keys = s3_server.iam_user_keys()
    wrong_secret = {**keys, "aws_secret_access_key": "not-the-secret-0123456789"}
    unknown_key = {"aws_access_key_id": "AKIAUNKNOWNKEY000000", "aws_secret_access_key": "whatever-secret-value"}
    unprivileged = s3_server.iam_user_keys(policy_actions=("sqs:ListQueues",))
    with s3_server.authentication_enforced():
        provider(s3_server, bucket, secrets=keys).validate()
        failures = {}
        for name, secrets in {"wrong secret": wrong_secret, "unknown key": unknown_key,
                              "unprivileged": unprivileged}.items():
            with pytest.raises(StorageError) as refused:
                provider(s3_server, bucket, secrets=secrets).validate()
            failures[name] = refused.value
    assert failures["wrong secret"].field == "aws_secret_access_key"
    assert failures["unknown key"].field == "aws_access_key_id"
    assert failures["unprivileged"].field == "aws_access_key_id"
    assert "not allowed" in failures["unprivileged"].detail
    for failure in failures.values():
        assert "not-the-secret" not in failure.detail and "whatever-secret" not in failure.detail


def test_an_endpoint_that_is_down_is_the_endpoints_fault(s3_server, settings):  # noqa: F811
    down = _free_port()
    settings.SSRF_PROTECTION_ALLOWLIST = [f"127.0.0.1:{down}"]
    storage = S3Provider(options={"bucket": "any", "s3_endpoint": f"http://127.0.0.1:{down}"},
                         secrets=s3_server.secrets())
    with pytest.raises(StorageError) as refused:
        storage.validate()
    assert refused.value.field == "s3_endpoint"
    assert "could not be reached" in refused.value.detail


# --- listing -------------------------------------------------------------------------------------

def test_listing_a_thousand_objects_recursively_and_not(s3_server, thousand_objects_bucket):  # noqa: F811
    storage = provider(s3_server, thousand_objects_bucket)
    started = time.monotonic()
    every_key = list(storage.keys(prefix="", recursive=True))
    elapsed = time.monotonic() - started
    print(f"listed {len(every_key)} objects in {elapsed:.2f}s")
    assert len(every_key) == len(set(every_key)) == 1000
    assert len(list(storage.keys(prefix="", recursive=False))) == 10
    assert len(list(storage.keys(prefix="a", recursive=True))) == 790
    assert len(list(storage.keys(prefix="a", recursive=False))) == 90
    assert len(list(storage.keys(prefix="a/b", recursive=False))) == 400
    assert len(list(storage.keys(prefix="a/b/c", recursive=True))) == 300
    assert len(list(storage.keys(prefix="d", recursive=False))) == 200
    assert all(key.startswith("a/b/c/task-") for key in storage.keys(prefix="a/b/c", recursive=False))


@pytest.mark.parametrize("recursive", [True, False])
def test_a_prefix_means_the_same_folder_with_or_without_slashes(s3_server, thousand_objects_bucket,  # noqa: F811
                                                                 recursive):
    storage = provider(s3_server, thousand_objects_bucket)
    listings = [sorted(storage.keys(prefix=prefix, recursive=recursive)) for prefix in ("a/b", "a/b/", "/a/b/")]
    assert listings[0] == listings[1] == listings[2]
    assert len(listings[0]) == (700 if recursive else 400)


def test_listing_goes_page_by_page(s3_server, thousand_objects_bucket, monkeypatch):  # noqa: F811
    monkeypatch.setattr(s3_module, "LIST_PAGE_SIZE", 100)
    storage = provider(s3_server, thousand_objects_bucket)
    calls = []
    storage._client().meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append(1))
    listing = storage.keys(prefix="", recursive=True)
    next(listing)
    assert len(calls) == 1  # one page fetched for the first key, not the whole bucket
    assert 1 + sum(1 for _ in listing) == 1000
    assert len(calls) == 10
    # Non-recursive pages hold the direct children only (S3 folds the rest into common prefixes).
    assert len(list(storage.keys(prefix="a/b", recursive=False))) == 400


def test_folder_markers_are_not_objects(s3_server, bucket):  # noqa: F811
    s3_server.put_many(bucket, {"scans/": b"", "scans/page-1.png": b"png", "scans/old/": b""})
    storage = provider(s3_server, bucket)
    assert list(storage.keys(prefix="scans", recursive=True)) == ["scans/page-1.png"]
    assert list(storage.keys(prefix="", recursive=False)) == []


# --- objects -------------------------------------------------------------------------------------

def test_write_read_delete_round_trip_keeps_the_content_type(s3_server, bucket):  # noqa: F811
    storage = provider(s3_server, bucket)
    storage.write("exports/42.json", b'{"id": 42}', content_type="application/json")
    storage.write("images/scan.png", b"\x89PNG", content_type="image/png")
    assert storage.read("exports/42.json") == b'{"id": 42}'
    assert storage.read("images/scan.png") == b"\x89PNG"
    assert s3_server.client.head_object(Bucket=bucket, Key="images/scan.png")["ContentType"] == "image/png"
    assert s3_server.client.head_object(Bucket=bucket, Key="exports/42.json")["ContentType"] == "application/json"

    storage.delete("exports/42.json")
    with pytest.raises(StorageError) as missing:
        storage.read("exports/42.json")
    assert missing.value.field is None and "exports/42.json" in missing.value.detail
    storage.delete("exports/42.json")  # already gone: no error
    assert list(storage.keys(prefix="", recursive=True)) == ["images/scan.png"]


def test_writes_are_encrypted_with_the_kms_key_when_given(s3_server, bucket):  # noqa: F811
    storage = provider(s3_server, bucket, aws_sse_kms_key_id="alias/scriptorium")
    storage.write("secret.json", b"{}")
    head = s3_server.client.head_object(Bucket=bucket, Key="secret.json")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/scriptorium")


def test_presigned_url_serves_the_object(s3_server, bucket):  # noqa: F811
    storage = provider(s3_server, bucket)
    storage.write("pages/1.png", b"page one", content_type="image/png")
    url = storage.presigned_url("pages/1.png", ttl_seconds=120)
    assert url.startswith(f"{s3_server.endpoint}/{bucket}/pages/1.png?")
    assert "X-Amz-Expires=120" in url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"page one"


def test_uri_and_key_of_are_reverse(s3_server, bucket):  # noqa: F811
    storage = provider(s3_server, bucket)
    assert storage.uri("a/b.json") == f"s3://{bucket}/a/b.json"
    assert storage.key_of(f"s3://{bucket}/a/b.json") == "a/b.json"
    assert storage.key_of("s3://another-bucket/a/b.json") is None
    assert storage.key_of(f"gs://{bucket}/a/b.json") is None


# --- the SSRF guard ------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", [
    "http://127.0.0.1:{other_port}",  # loopback, not in the allow-list
    "http://169.254.169.254",  # the cloud metadata service
    "http://169.254.169.254:{port}",
    "file:///etc/passwd",
])
def test_an_endpoint_the_ssrf_guard_refuses_is_never_reached(s3_server, bucket, endpoint):  # noqa: F811
    endpoint = endpoint.format(other_port=_free_port(), port=s3_server.port)
    storage = S3Provider(options={**s3_server.options(bucket), "s3_endpoint": endpoint}, secrets=s3_server.secrets())
    for call in (storage.validate, lambda: list(storage.keys(prefix="", recursive=True)),
                 lambda: storage.presigned_url("a.json", ttl_seconds=60), lambda: storage.write("a.json", b"{}")):
        with pytest.raises(StorageError) as refused:
            call()
        assert refused.value.field == "s3_endpoint"
    assert list(s3_server.client.list_objects_v2(Bucket=bucket).get("Contents", ())) == []


# --- roles ---------------------------------------------------------------------------------------

def test_a_role_is_assumed_through_sts_and_its_credentials_used(s3_server, bucket):  # noqa: F811
    role_arn = s3_server.iam_role(policy_actions=("s3:*",))
    # These keys may only assume roles: listing works through the role's credentials alone.
    assuming_only = s3_server.iam_user_keys(policy_actions=("sts:AssumeRole",))
    s3_server.put_many(bucket, {"in/1.json": b"{}"})
    with s3_server.authentication_enforced():
        with pytest.raises(StorageError):
            provider(s3_server, bucket, secrets=assuming_only).validate()
        storage = provider(s3_server, bucket, secrets=assuming_only, role_arn=role_arn, external_id="org-a-7f3c")
        storage.validate()
        assert list(storage.keys(prefix="in", recursive=False)) == ["in/1.json"]
        storage.write("out/1.json", b'{"done": true}')
        assert storage.read("out/1.json") == b'{"done": true}'


def test_a_role_the_keys_may_not_assume_is_the_roles_fault(s3_server, bucket):  # noqa: F811
    role_arn = s3_server.iam_role()
    cannot_assume = s3_server.iam_user_keys(policy_actions=("s3:GetObject",))
    with s3_server.authentication_enforced(), pytest.raises(StorageError) as refused:
        provider(s3_server, bucket, secrets=cannot_assume, role_arn=role_arn).validate()
    assert refused.value.field == "role_arn"
