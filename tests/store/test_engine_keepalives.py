"""psycopg connections carry TCP keepalives: with no ``pool_pre_ping``, an idle pooled
connection whose flow a NAT or firewall forgot must be found dead by the kernel (and discarded at
checkout) rather than fail a request's statement."""

from __future__ import annotations

from authgate.store.sqlalchemy.engines import TCP_KEEPALIVES, create_database_engine
from tests.helpers import pg_base_url


def test_psycopg_connections_carry_tcp_keepalives() -> None:
    engine = create_database_engine(pg_base_url())
    try:
        with engine.connect() as conn:
            dsn = conn.connection.dbapi_connection.info.dsn  # type: ignore[union-attr]
    finally:
        engine.dispose()
    assert TCP_KEEPALIVES == {
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }
    for name, value in TCP_KEEPALIVES.items():
        assert f"{name}={value}" in dsn


def test_the_url_overrides_a_keepalive_setting() -> None:
    separator = "&" if "?" in pg_base_url() else "?"
    engine = create_database_engine(f"{pg_base_url()}{separator}keepalives_idle=60")
    try:
        with engine.connect() as conn:
            dsn = conn.connection.dbapi_connection.info.dsn  # type: ignore[union-attr]
    finally:
        engine.dispose()
    assert "keepalives_idle=60" in dsn
    assert "keepalives_count=3" in dsn
