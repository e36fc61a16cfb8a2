"""``AUTHGATE_LEGACY_JWT_*``: the dual run's settings refuse what would make it unsafe."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.config import load_settings
from authgate.errors import ConfigError
from tests.helpers import clear_authgate_environment

SECRET = "s" * 32
CUTOFF = "2027-03-01T00:00:00Z"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_authgate_environment(monkeypatch)


def legacy(**values: str) -> dict[str, str]:
    return {f"AUTHGATE_LEGACY_JWT_{k.upper()}": v for k, v in values.items()}


def test_off_by_default() -> None:
    settings = load_settings({})
    assert not settings.legacy_jwt_enabled
    assert settings.read_legacy_jwt_secret() is None


def test_a_secret_from_the_environment_or_a_file(tmp_path: Path) -> None:
    settings = load_settings(legacy(secret=SECRET, cutoff=CUTOFF, algorithms="HS256"))
    assert settings.legacy_jwt_enabled
    assert settings.read_legacy_jwt_secret() == SECRET.encode()
    assert SECRET not in repr(settings)
    secret_file = tmp_path / "legacy-secret"
    secret_file.write_text(SECRET + "\n")
    from_file = load_settings(legacy(secret_file=str(secret_file), cutoff=CUTOFF))
    assert from_file.read_legacy_jwt_secret() == SECRET.encode()
    assert from_file.legacy_jwt_cutoff is not None and from_file.legacy_jwt_cutoff.year == 2027


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (legacy(secret=SECRET), "legacy_jwt_cutoff is required"),
        (legacy(secret=SECRET, cutoff="2027-03-01T00:00:00"), "needs a time zone"),
        (legacy(secret=SECRET, cutoff=CUTOFF, algorithms="none"), "never none"),
        (legacy(secret=SECRET, cutoff=CUTOFF, algorithms="HS256,RS256"), "never none"),
        (legacy(secret="SECRET_KEY", cutoff=CUTOFF), "lets anyone forge"),
        (legacy(secret=SECRET, cutoff=CUTOFF, algorithms="HS512"), "needs at least 64"),
        (legacy(secret=SECRET, cutoff=CUTOFF, header="Authorization", cookie=""), "Authorization"),
        (legacy(secret=SECRET, cutoff=CUTOFF, cookie=""), "must name where the token is"),
        (legacy(secret=SECRET, secret_file="/nonexistent", cutoff=CUTOFF), "not both"),
    ],
)
def test_unsafe_values_are_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(values)


def test_a_secret_file_that_cannot_be_read_is_a_clear_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a traceback: the file is there, but this user may not read it (root reads anything,
    so the refusal is simulated)."""
    secret_file = tmp_path / "legacy-secret"
    secret_file.write_text(SECRET)
    real_read = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path == secret_file:
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError, match=r"legacy-secret cannot be read \(Permission denied\)"):
        load_settings(legacy(secret_file=str(secret_file), cutoff=CUTOFF))
