"""``authgate doctor``'s ``avatars`` group: the storage, and files waiting to be imported."""

from __future__ import annotations

from pathlib import Path

from authgate.doctor.avatars import check_avatars
from authgate.doctor.findings import Finding
from authgate.doctor.production import check_production_refusals
from tests.doctor.helpers import production_settings
from tests.helpers import make_settings
from tests.s3_server import S3Server, free_port

NAME = "K" * 32 + ".png"


def ids(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.check, f.level) for f in findings]


def test_the_database_default_with_no_files_is_ok(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    assert ids(check_avatars(settings)) == [("avatars.database", "ok")]


def test_files_of_an_earlier_version_are_a_warning_naming_the_command(tmp_path: Path) -> None:
    (tmp_path / "avatars").mkdir()
    (tmp_path / "avatars" / NAME).write_bytes(b"png")
    (tmp_path / "avatars" / "notes.txt").write_text("not an image")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    findings = check_avatars(settings)
    assert ids(findings) == [("avatars.database", "ok"), ("avatars.files_in_instance", "warning")]
    assert "1 avatar image file(s)" in findings[1].message
    assert "authgate avatars import-dir" in findings[1].fix


def test_a_bucket_that_answers_is_ok(tmp_path: Path, s3_server: S3Server) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'a.db'}", **s3_server.settings(s3_server.new_bucket())
    )
    assert ids(check_avatars(settings)) == [("avatars.bucket", "ok")]


def test_a_missing_bucket_or_an_unreachable_server_is_an_error(
    tmp_path: Path, s3_server: S3Server
) -> None:
    missing = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'a.db'}", **s3_server.settings("no-such-bucket")
    )
    assert ids(check_avatars(missing)) == [("avatars.bucket_unreachable", "error")]
    unreachable = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'a.db'}",
        **{
            **s3_server.settings("avatars"),
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
            "s3_timeout_seconds": 2,
        },
    )
    [finding] = check_avatars(unreachable)
    assert (finding.check, finding.level) == ("avatars.bucket_unreachable", "error")
    assert "testing-secret" not in finding.message + finding.fix


S3_OFF_HOST = {"avatar_storage": "s3", "s3_bucket": "avatars"}


def test_a_plain_http_bucket_off_this_host_is_an_error_in_production(tmp_path: Path) -> None:
    settings = production_settings(
        tmp_path, **S3_OFF_HOST, s3_endpoint_url="http://minio.internal:9000"
    )
    findings = check_avatars(settings, connect=False)
    assert ids(findings) == [("avatars.bucket", "ok"), ("avatars.plain_http", "error")]
    plain = findings[1]
    assert "plain http:// to minio.internal" in plain.message
    assert "production refuses it" in plain.message
    assert "https://" in plain.fix
    # Reported once: by this check, not again as a bare production refusal.
    assert len(settings.production_problems()) == 1
    assert check_production_refusals(settings) == []


def test_a_plain_http_bucket_off_this_host_is_a_warning_in_development(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'a.db'}",
        **S3_OFF_HOST,
        s3_endpoint_url="http://10.0.0.7:9000",
    )
    assert ids(check_avatars(settings, connect=False)) == [
        ("avatars.bucket", "ok"),
        ("avatars.plain_http", "warning"),
    ]


def test_a_bucket_on_this_host_or_over_https_is_not_flagged(tmp_path: Path) -> None:
    for endpoint in ("http://127.0.0.1:9000", "http://localhost:9000", "https://s3.example.com"):
        settings = production_settings(tmp_path, **S3_OFF_HOST, s3_endpoint_url=endpoint)
        assert ids(check_avatars(settings, connect=False)) == [("avatars.bucket", "ok")]
