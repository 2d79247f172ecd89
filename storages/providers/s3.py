"""Amazon S3 and S3-compatible servers (MinIO, Ceph, moto): the `s3` storage provider.

Options follow Label Studio's S3 storage fields. With `s3_endpoint` the client talks to that
server with path-style addressing (what MinIO and most compatible servers expect); the endpoint is
the user's, so it passes the SSRF guard before the first connection. With `role_arn` the given
keys only serve to assume the role through STS (at `s3_endpoint` too when set: MinIO serves STS
there); the storage then works with the role's temporary credentials, renewed before they expire.

Explicit keys are required: without them boto3 would fall back to the credentials of the server
itself (environment, instance role), and one organization must never reach the operator's buckets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from platform_core.ssrf import UnsafeUrlError, vet_url
from storages.providers.base import CHUNK_BYTES, Provider, StorageError, direct_child

DEFAULT_REGION = "us-east-1"
# SigV4 presigned URLs are valid for at most seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# Keys per ListObjectsV2 call (S3's maximum); tests lower it to cross page boundaries.
LIST_PAGE_SIZE = 1000
ROLE_SESSION_NAME = "scriptorium-storage"
# Assume the role again this long before its credentials expire, so no call runs on stale ones.
ROLE_RENEWAL_MARGIN_SECONDS = 300

# Error codes of S3 and STS, by the option they point at.
_BUCKET_CODES = frozenset({"NoSuchBucket", "InvalidBucketName", "404", "NotFound"})
_ACCESS_KEY_CODES = frozenset({"InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException"})
_SECRET_KEY_CODES = frozenset({"SignatureDoesNotMatch", "IncompleteSignature"})
_SESSION_TOKEN_CODES = frozenset({"InvalidToken", "ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "403", "Forbidden"})
_REGION_CODES = frozenset({"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException",
                           "InvalidRegion"})
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey"})
# What boto3 raises for a failed call: S3 answered with an error, or no answer came.
_CLIENT_FAILURES = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


class S3Provider(Provider):
    kind = "s3"
    scheme = "s3"
    secret_fields = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    option_fields = ("bucket", "region_name", "s3_endpoint", "role_arn", "external_id", "aws_sse_kms_key_id")

    def __init__(self, *, options: dict, secrets: dict):
        super().__init__(options=options, secrets=secrets)
        self._s3 = None
        self._credentials_expire_at: float | None = None  # monotonic time; None for long-lived keys

    # --- options -------------------------------------------------------------------------------
    @property
    def container(self) -> str:
        return (self.options.get("bucket") or "").strip()

    def _option(self, name: str) -> str | None:
        value = self.options.get(name)
        return (value.strip() or None) if isinstance(value, str) else None

    def _secret(self, name: str) -> str | None:
        value = self.secrets.get(name)
        return (value.strip() or None) if isinstance(value, str) else None

    @property
    def _endpoint(self) -> str | None:
        return self._option("s3_endpoint")

    @property
    def _region(self) -> str:
        return self._option("region_name") or DEFAULT_REGION

    # --- the client ----------------------------------------------------------------------------
    def _client(self):
        renewal_due = (self._credentials_expire_at is not None
                       and time.monotonic() > self._credentials_expire_at - ROLE_RENEWAL_MARGIN_SECONDS)
        if self._s3 is None or renewal_due:
            self._s3 = self._build_client()
        return self._s3

    def _build_client(self):
        if not self.container:
            raise StorageError("Give the name of the bucket.", field="bucket")
        endpoint = self._endpoint
        if endpoint is not None:
            try:
                vet_url(endpoint, schemes=("http", "https"))
            except UnsafeUrlError as exc:
                raise StorageError(f"This S3 endpoint is not allowed: {exc}", field="s3_endpoint") from None
        access_key, secret_key = self._secret("aws_access_key_id"), self._secret("aws_secret_access_key")
        if access_key is None:
            raise StorageError("Give an AWS access key ID.", field="aws_access_key_id")
        if secret_key is None:
            raise StorageError("Give the AWS secret access key.", field="aws_secret_access_key")
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if endpoint else {},
            connect_timeout=5, read_timeout=60,
            retries={"mode": "standard", "total_max_attempts": 3},
            max_pool_connections=20,
        )
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                aws_session_token=self._secret("aws_session_token"), region_name=self._region,
            )
            role_arn = self._option("role_arn")
            if role_arn is not None:
                session = self._assumed_role_session(session, role_arn=role_arn, endpoint=endpoint, config=config)
            else:
                self._credentials_expire_at = None
            return session.client("s3", endpoint_url=endpoint, config=config)
        except (*_CLIENT_FAILURES, ValueError) as exc:  # ValueError: botocore's "Invalid endpoint"
            raise self._storage_error(exc, doing="connect to S3") from None

    def _assumed_role_session(self, session, *, role_arn: str, endpoint: str | None, config: Config):
        # An S3-compatible server serves STS at its own endpoint (MinIO does); AWS has STS apart.
        on_aws = endpoint is not None and (urlsplit(endpoint).hostname or "").endswith(".amazonaws.com")
        sts = session.client("sts", endpoint_url=None if on_aws else endpoint, config=config)
        arguments = {"RoleArn": role_arn, "RoleSessionName": ROLE_SESSION_NAME}
        if external_id := self._option("external_id"):
            arguments["ExternalId"] = external_id
        try:
            credentials = sts.assume_role(**arguments)["Credentials"]
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _DENIED_CODES or code in {"ValidationError", "MalformedPolicyDocument"}:
                raise StorageError(
                    "The role cannot be assumed with these credentials: check role_arn, external_id and the "
                    "role's trust policy.", field="role_arn") from None
            raise self._storage_error(exc, doing="assume the role") from None
        expiration = credentials["Expiration"]
        self._credentials_expire_at = time.monotonic() + max(expiration.timestamp() - time.time(), 0)
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name=self._region,
        )

    def _storage_error(self, exc: Exception, *, doing: str, key: str | None = None) -> StorageError:
        """A message naming the option at fault; never the library's text, which may quote a request."""
        bucket = self.container
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_OBJECT_CODES or (key is not None and code in {"404", "NotFound"}):
                return StorageError(f"The object {key!r} does not exist in the bucket {bucket!r}.")
            if code in _BUCKET_CODES:
                return StorageError(f"The bucket {bucket!r} does not exist.", field="bucket")
            if code in _ACCESS_KEY_CODES:
                return StorageError("The AWS access key ID is not recognized.", field="aws_access_key_id")
            if code in _SECRET_KEY_CODES:
                return StorageError("The AWS secret access key does not match the access key ID.",
                                    field="aws_secret_access_key")
            if code in _SESSION_TOKEN_CODES:
                return StorageError("The AWS session token is invalid or has expired.", field="aws_session_token")
            if code.startswith("KMS.") or code == "KMSKeyNotAccessibleFault":
                return StorageError("The KMS key cannot be used to encrypt objects.", field="aws_sse_kms_key_id")
            if code in _DENIED_CODES:
                field = "role_arn" if self._option("role_arn") else "aws_access_key_id"
                return StorageError(f"These credentials are not allowed to {doing} in the bucket {bucket!r}.",
                                    field=field)
            if code in _REGION_CODES:
                return StorageError(f"The bucket {bucket!r} is not in the region {self._region!r}.",
                                    field="region_name")
            return StorageError(f"S3 refused to {doing} (error {code or 'unknown'}).")
        if isinstance(exc, botocore.exceptions.InvalidRegionError):
            return StorageError(f"{self._region!r} is not a valid region name.", field="region_name")
        if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
            return StorageError("Give an AWS access key ID and secret access key.", field="aws_access_key_id")
        if isinstance(exc, botocore.exceptions.ParamValidationError):
            return StorageError(f"S3 cannot {doing}: the bucket name or object key is not valid.", field="bucket")
        if isinstance(exc, botocore.exceptions.SSLError):
            return StorageError("The S3 endpoint's TLS certificate could not be verified.", field="s3_endpoint")
        if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError
                      | botocore.exceptions.ReadTimeoutError | botocore.exceptions.ConnectionClosedError):
            where = "The S3 endpoint" if self._endpoint else "S3"
            return StorageError(f"{where} could not be reached to {doing}.",
                                field="s3_endpoint" if self._endpoint else None)
        if isinstance(exc, ValueError) and self._endpoint:  # botocore: "Invalid endpoint: ..."
            return StorageError("The S3 endpoint is not a valid URL.", field="s3_endpoint")
        return StorageError(f"S3 failed to {doing}.")

    # --- the container ---------------------------------------------------------------------------
    def validate(self) -> None:
        # Listing (not HeadBucket): it proves the list permission a sync needs, and S3 answers
        # with an error code where HeadBucket only gives a status.
        try:
            self._client().list_objects_v2(Bucket=self.container, MaxKeys=1)
        except _CLIENT_FAILURES as exc:
            raise self._storage_error(exc, doing="list the objects") from None

    # --- objects ---------------------------------------------------------------------------------
    def keys(self, *, prefix: str, recursive: bool) -> Iterator[str]:
        folder = (prefix or "").strip("/")
        folder = f"{folder}/" if folder else ""
        arguments = {"Bucket": self.container, "Prefix": folder}
        if not recursive:
            arguments["Delimiter"] = "/"
        try:
            pages = self._client().get_paginator("list_objects_v2").paginate(
                **arguments, PaginationConfig={"PageSize": LIST_PAGE_SIZE})
            for page in pages:
                for entry in page.get("Contents", ()):
                    key = entry["Key"]
                    # Keys ending in '/' are folder markers (the S3 console makes them), not objects.
                    if key.endswith("/") or (not recursive and not direct_child(key=key, prefix=folder)):
                        continue
                    yield key
        except _CLIENT_FAILURES as exc:
            raise self._storage_error(exc, doing="list the objects") from None

    def read(self, key: str) -> bytes:
        try:
            return self._client().get_object(Bucket=self.container, Key=key)["Body"].read()
        except _CLIENT_FAILURES as exc:
            raise self._storage_error(exc, doing="read an object", key=key) from None

    def chunks(self, key: str):
        try:
            body = self._client().get_object(Bucket=self.container, Key=key)["Body"]
            yield from body.iter_chunks(CHUNK_BYTES)
        except _CLIENT_FAILURES as exc:
            raise self._storage_error(exc, doing="read an object", key=key) from None

    def write(self, key: str, data: bytes, *, content_type: str = "application/json") -> None:
        arguments = {"Bucket": self.container, "Key": key, "Body": data, "ContentType": content_type}
        if kms_key := self._option("aws_sse_kms_key_id"):
            arguments.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
        try:
            self._client().put_object(**arguments)
        except _CLIENT_FAILURES as exc:
            raise self._storage_error(exc, doing="write an object") from None

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too.
        try:
            self._client().delete_object(Bucket=self.container, Key=key)
        except _CLIENT_FAILURES as exc:
            raise self._storage_error(exc, doing="delete an object", key=key) from None

    def presigned_url(self, key: str, *, ttl_seconds: int) -> str:
        expires_in = min(max(int(ttl_seconds), 1), MAX_PRESIGN_SECONDS)
        try:
            return self._client().generate_presigned_url(
                "get_object", Params={"Bucket": self.container, "Key": key}, ExpiresIn=expires_in,
            )
        except _CLIENT_FAILURES as exc:
            raise self._storage_error(exc, doing="sign a URL", key=key) from None
