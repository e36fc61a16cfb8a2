"""``authgate avatars import-dir``: an earlier version's avatar files go into the storage under
their own names, so existing users' avatar URLs keep working (database and S3)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from authgate.bootstrap import build_service
from authgate.cli import main
from authgate.config import load_settings
from tests.helpers import (
    PUBLIC_URL,
    clear_authgate_environment,
    command_environment,
    make_app,
    new_user,
)
from tests.s3_server import S3Server, free_port

JPG = "J" * 32 + ".jpg"
PNG = "P" * 32 + ".png"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_authgate_environment(monkeypatch)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return command_environment(tmp_path, database_url)


def picture(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "teal").save(out, fmt)
    return out.getvalue()


def legacy_folder(tmp_path: Path) -> Path:
    """What an earlier version left in ``<instance>/avatars/``."""
    folder = tmp_path / "avatars"
    folder.mkdir()
    (folder / JPG).write_bytes(picture("JPEG"))
    (folder / PNG).write_bytes(picture("PNG"))
    (folder / ".upload-abc.tmp").write_bytes(b"half written")
    (folder / "notes.txt").write_text("not an avatar")
    return folder


def run(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Result:
    for key, value in env.items():  # build_service in the test reads the same settings
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_files_are_imported_under_their_names_and_their_urls_serve_them(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = legacy_folder(tmp_path)
    service = build_service(load_settings(env))
    try:
        user = new_user(service, "ada@example.com")
        url = f"{PUBLIC_URL}/avatars/{JPG}"
        service.store.set_avatar_url(user.id, url, now=service.clock.now())
        client = make_app(service).test_client()
        assert client.get(f"/avatars/{JPG}").status_code == 404  # not served from the disk

        result = run(["avatars", "import-dir"], env, monkeypatch)

        assert result.exit_code == 0, result.output
        assert f"Imported 2 avatar image(s) from {folder} into the database" in result.output
        served = client.get(f"/avatars/{JPG}")
        assert served.status_code == 200
        assert served.data == (folder / JPG).read_bytes()
        assert served.mimetype == "image/jpeg"
        assert client.get(f"/avatars/{PNG}").mimetype == "image/png"

        again = run(["avatars", "import-dir"], env, monkeypatch)
        assert "Imported 0 avatar image(s)" in again.output
        assert "2 were there already" in again.output
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [JPG, PNG, ".upload-abc.tmp", "notes.txt"]
        )
    finally:
        service.close()


def test_delete_files_removes_only_the_imported_images(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = legacy_folder(tmp_path)
    result = run(["avatars", "import-dir", "--delete-files"], env, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "(their files deleted)" in result.output
    assert sorted(p.name for p in folder.iterdir()) == [".upload-abc.tmp", "notes.txt"]


def test_a_folder_of_another_path_and_a_missing_one(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "old-instance" / "avatars"
    elsewhere.mkdir(parents=True)
    (elsewhere / PNG).write_bytes(picture("PNG"))
    result = run(["avatars", "import-dir", "--dir", str(elsewhere)], env, monkeypatch)
    assert "Imported 1 avatar image(s)" in result.output
    nothing = run(["avatars", "import-dir", "--dir", str(tmp_path / "none")], env, monkeypatch)
    assert nothing.exit_code == 0
    assert "Imported 0 avatar image(s)" in nothing.output


def test_into_an_s3_bucket(
    tmp_path: Path,
    env: dict[str, str],
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    legacy_folder(tmp_path)
    bucket = s3_server.new_bucket()
    s3_env = {**env, **{f"AUTHGATE_{k.upper()}": v for k, v in s3_server.settings(bucket).items()}}
    result = run(["avatars", "import-dir"], s3_env, monkeypatch)
    assert result.exit_code == 0, result.output
    assert f"into s3://{bucket}/avatars/ at {s3_server.url}" in result.output
    assert s3_server.keys(bucket) == [f"avatars/{JPG}", f"avatars/{PNG}"]


def test_an_unreachable_bucket_is_a_clear_refusal(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy_folder(tmp_path)
    s3_env = {
        **env,
        "AUTHGATE_AVATAR_STORAGE": "s3",
        "AUTHGATE_S3_BUCKET": "avatars",
        "AUTHGATE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AUTHGATE_S3_ACCESS_KEY_ID": "id",
        "AUTHGATE_S3_SECRET_ACCESS_KEY": "secret",
        "AUTHGATE_S3_TIMEOUT_SECONDS": "2",
    }
    result = CliRunner().invoke(main, ["avatars", "import-dir"], env=s3_env)
    assert result.exit_code == 1
    assert "The avatar storage is unavailable" in result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "avatars" / JPG).is_file()
