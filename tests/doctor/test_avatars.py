"""``authgate doctor``'s ``avatars`` group: the storage, and files waiting to be imported."""

from __future__ import annotations

from pathlib import Path

from authgate.doctor.avatars import check_avatars
from authgate.doctor.findings import Finding
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
