"""Redis, the channel that carries revocations to other server processes (group ``redis``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

from authgate.config import Settings
from authgate.doctor.findings import Finding, error_finding, first_line_of_error, ok_finding

__all__ = ["check_redis", "check_redis_url"]


def _redact_url(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def check_redis(settings: Settings) -> list[Finding]:
    if settings.redis_url is None:
        return [
            ok_finding(
                "redis.not_configured",
                "AUTHGATE_REDIS_URL is not set: revocations reach other server processes by "
                "polling the database (within about "
                f"{settings.revocation_poll_interval_seconds:g} s).",
            )
        ]
    return [check_redis_url(settings.redis_url.get_secret_value())]


def check_redis_url(url: str, *, timeout: float = 2.0) -> Finding:
    shown = _redact_url(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError as e:
        return error_finding(
            "redis.invalid_url",
            f"AUTHGATE_REDIS_URL is not a Redis URL ({e}).",
            "Use e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS).",
        )
    try:
        client.ping()
    except (redis.RedisError, OSError) as e:
        return error_finding(
            "redis.unreachable",
            f"Redis at {shown} does not answer ({first_line_of_error(e)}): the server will not "
            "start its revocation channel.",
            "Start Redis or fix AUTHGATE_REDIS_URL (host, port, password); or unset it to "
            "propagate revocations by polling the database.",
        )
    finally:
        client.close()
    return ok_finding("redis.reachable", f"Redis at {shown} answers.")
