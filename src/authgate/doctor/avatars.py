"""The avatar images' storage (group ``avatars``): the bucket answers, over https unless it is
on this host; no earlier version's files wait in the instance folder to be imported."""

from __future__ import annotations

from authgate.backends.avatar_storage import avatar_files_in
from authgate.config import Settings
from authgate.doctor.findings import Finding, error_finding, ok_finding, warning_finding
from authgate.errors import AvatarStorageUnavailableError

__all__ = ["check_avatars"]


def check_avatars(settings: Settings, *, connect: bool = True) -> list[Finding]:
    findings = [_check_storage(settings, connect=connect)]
    plain_http = _check_plain_http(settings)
    if plain_http is not None:
        findings.append(plain_http)
    folder = settings.instance_path / "avatars"
    files = sum(1 for _ in avatar_files_in(folder))
    if files:
        findings.append(
            warning_finding(
                "avatars.files_in_instance",
                f"{folder} holds {files} avatar image file(s) of an earlier version: they are "
                "not served from there, so the users whose avatar they are see none until they "
                "are imported.",
                "Run `authgate avatars import-dir --delete-files` (on each host that has such a "
                "folder).",
            )
        )
    return findings


def _check_plain_http(settings: Settings) -> Finding | None:
    host = settings.s3_plain_http_host
    if host is None:
        return None
    message = (
        f"AUTHGATE_S3_ENDPOINT_URL is plain http:// to {host}: the bucket's access key, signed "
        "requests and every avatar image cross the network unencrypted"
    )
    fix = (
        "Use the server's https:// URL (MinIO, Ceph and R2 all serve TLS), or run it on this "
        "host (http://127.0.0.1:9000)."
    )
    if settings.is_production:
        return error_finding("avatars.plain_http", message + " (production refuses it).", fix)
    return warning_finding("avatars.plain_http", message + ".", fix)


def _check_storage(settings: Settings, *, connect: bool) -> Finding:
    if settings.avatar_storage == "database":
        return ok_finding("avatars.database", "Avatar images are stored in the database.")
    from authgate.backends.avatar_s3 import S3AvatarStorage

    storage = S3AvatarStorage.from_settings(settings)
    if not connect:
        return ok_finding("avatars.bucket", f"Avatar images are stored in {storage.describe()}.")
    try:
        storage.check()
    except AvatarStorageUnavailableError:
        return error_finding(
            "avatars.bucket_unreachable",
            f"The avatar bucket {storage.describe()} cannot be used (unreachable, no such "
            "bucket, or credentials refused; the server log names which): uploads and avatar "
            "images answer 503.",
            "Check AUTHGATE_S3_BUCKET, AUTHGATE_S3_ENDPOINT_URL, AUTHGATE_S3_REGION and the "
            "credentials (AUTHGATE_S3_ACCESS_KEY_ID/AUTHGATE_S3_SECRET_ACCESS_KEY or the AWS "
            "environment), and that the bucket exists.",
        )
    return ok_finding("avatars.bucket", f"The avatar bucket {storage.describe()} answers.")
