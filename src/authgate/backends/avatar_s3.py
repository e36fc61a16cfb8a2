"""Avatar images in an S3-compatible bucket (``AUTHGATE_AVATAR_STORAGE=s3``): AWS S3, MinIO,
Ceph, Cloudflare R2, ...

boto3 is imported when this storage is first used, and only in processes configured for it (a
worker without S3 never loads it). The client is made once per process (again after a fork).
Objects are ``<AUTHGATE_S3_PREFIX><name>``, written with ``If-None-Match: *`` (never over
another), their type, their SHA-256 as metadata and the immutable ``Cache-Control`` (in case the
bucket is ever served directly). The bucket may stay private: the app reads the images and
serves them itself, with the same ``ETag`` and ``304`` as from the database. A revalidation
reads the tag with ``HeadObject`` (the metadata, not the image); an object without our
metadata (put by another tool) is read whole instead, its digest computed from its bytes.

Every failure of the bucket — unreachable, a timeout, refused credentials, no such bucket, an
error answer — becomes ``AvatarStorageUnavailableError`` (503), logged with its kind but never
its text to the client. A missing object is simply not there.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from authgate.backends.avatar_storage import avatar_image
from authgate.core.avatar_names import avatar_content_type
from authgate.errors import AvatarStorageUnavailableError
from authgate.store.records import AvatarImageRecord, AvatarImageTag

if TYPE_CHECKING:
    from authgate.config import Settings

log = logging.getLogger("authgate")

T = TypeVar("T")
# The answer's Cache-Control of the image views (``avatar_views.IMMUTABLE``): a name is
# never reused for other content.
OBJECT_CACHE_CONTROL = "public, max-age=31536000, immutable"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_TAKEN = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class S3AvatarStorage:
    """The images as objects of one bucket, under one prefix."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "avatars/",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        timeout_seconds: float = 5.0,
    ):
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.timeout_seconds = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()
        # A forked child (gunicorn --preload) makes its own client: boto3's are not fork-safe.
        storage = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget_client(storage))

    @classmethod
    def from_settings(cls, settings: Settings) -> S3AvatarStorage:
        secret = settings.s3_secret_access_key
        return cls(
            bucket=settings.s3_bucket or "",
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            timeout_seconds=settings.s3_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"S3AvatarStorage({self.describe()})"

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def put(self, image: AvatarImageRecord, *, now: datetime) -> bool:
        def put_object(s3: Any) -> bool:
            s3.put_object(
                Bucket=self.bucket,
                Key=self.prefix + image.name,
                Body=image.data,
                ContentType=image.content_type,
                CacheControl=OBJECT_CACHE_CONTROL,
                Metadata={"sha256": image.digest},
                IfNoneMatch="*",
            )
            return True

        return self._call("put", put_object, taken=False)

    def get(self, name: str) -> AvatarImageRecord | None:
        def get_object(s3: Any) -> AvatarImageRecord:
            answer = s3.get_object(Bucket=self.bucket, Key=self.prefix + name)
            with answer["Body"] as body:
                data = body.read()
            # The type comes from the name (ours), never from what the bucket says.
            return avatar_image(name, data)

        return self._call("get", get_object, missing=None)

    def get_tag(self, name: str) -> AvatarImageTag | None:
        """The tag from the object's metadata (``HeadObject``). An object without a SHA-256 of
        ours there (put by another tool) is read whole (``GetObject``), and that image
        returned; so is a 404, which from a HEAD (no body, no error code) may be a missing
        bucket as well as a missing object: GetObject's answer tells them apart."""

        def head_object(s3: Any) -> str:
            answer = s3.head_object(Bucket=self.bucket, Key=self.prefix + name)
            return str(answer.get("Metadata", {}).get("sha256", ""))

        digest = self._call("head", head_object, missing="")
        if not _SHA256_HEX.fullmatch(digest):
            return self.get(name)
        return AvatarImageTag(name=name, content_type=avatar_content_type(name), digest=digest)

    def delete(self, name: str) -> None:
        def delete_object(s3: Any) -> None:
            s3.delete_object(Bucket=self.bucket, Key=self.prefix + name)

        self._call("delete", delete_object, missing=None)

    def check(self) -> None:
        """Whether the bucket is there and ours to use (``HEAD`` it); raises
        ``AvatarStorageUnavailableError`` when not."""

        def head_bucket(s3: Any) -> None:
            s3.head_bucket(Bucket=self.bucket)

        self._call("check", head_bucket)

    def _call(self, action: str, call: Callable[[Any], T], **outcomes: Any) -> T:
        """``call(client)``; a ``ClientError`` whose code is a missing object or a taken name
        returns the outcome given for it (``missing=``, ``taken=``), and every other failure
        is ``AvatarStorageUnavailableError``."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
        )

        try:
            return call(self._s3())
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if "missing" in outcomes and code in _MISSING:
                return outcomes["missing"]  # type: ignore[no-any-return]
            if "taken" in outcomes and code in _TAKEN:
                return outcomes["taken"]  # type: ignore[no-any-return]
            log.warning("avatar storage: %s failed on %s: %s", action, self.describe(), code)
            raise AvatarStorageUnavailableError() from e
        except BotoCoreError as e:  # no connection, a timeout, no credentials, ...
            log.warning(
                "avatar storage: %s failed on %s: %s", action, self.describe(), type(e).__name__
            )
            raise AvatarStorageUnavailableError() from e

    def _s3(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = self._make_client()
        return client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
            # One attempt: a request waits at most the timeouts, then answers 503.
            retries={"max_attempts": 1, "mode": "standard"},
            # S3-compatible servers on their own host name (MinIO, Ceph, ...) rarely serve
            # bucket sub-domains; AWS itself takes either.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self._access_key_id,
            aws_secret_access_key=self._secret_access_key,
            config=config,
        )


def _forget_client(storage: weakref.ref[S3AvatarStorage]) -> None:
    alive = storage()
    if alive is not None:
        alive._client = None
