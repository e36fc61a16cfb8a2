"""Redis (group ``redis``)."""

from __future__ import annotations

from pathlib import Path

from authgate.doctor import check_redis, check_redis_url
from tests.doctor.helpers import dev_settings, only
from tests.helpers import REDIS_URL, free_port


def test_a_reachable_redis_is_ok(tmp_path: Path) -> None:
    findings = check_redis(dev_settings(tmp_path, redis_url=REDIS_URL))

    assert only(findings, "redis.reachable").level == "ok"


def test_an_unreachable_redis_is_an_error() -> None:
    finding = check_redis_url(f"redis://:hunter2@127.0.0.1:{free_port()}/0", timeout=1)

    assert finding.level == "error"
    assert finding.check == "redis.unreachable"
    assert "hunter2" not in finding.message


def test_an_invalid_redis_url_is_an_error() -> None:
    assert check_redis_url("http://127.0.0.1:6379").check == "redis.invalid_url"


def test_redis_is_optional(tmp_path: Path) -> None:
    assert only(check_redis(dev_settings(tmp_path)), "redis.not_configured").level == "ok"
