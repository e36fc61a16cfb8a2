"""``AUTHGATE_TRUSTED_PROXIES``: how many ``X-Forwarded-*`` hops the app believes (ProxyFix).

Seen through ``GET /api/auth/diagnose``, which reports the client address, scheme and host the app
works with (the login throttle, ``Secure`` cookies and redirects depend on them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from authgate.bootstrap import build_service
from tests.helpers import StepClock, make_app, make_settings

DIAGNOSE = "/api/auth/diagnose"
LAST_PROXY = "10.0.0.2"  # the TCP peer: the proxy nearest the app
FIRST_PROXY = "10.0.0.1"
CLIENT = "203.0.113.9"
FORGED = "198.51.100.66"


@pytest.fixture
def client_for(tmp_path: Path, database_url: str, clock: StepClock) -> Iterator[Any]:
    services = []

    def make(trusted_proxies: int) -> FlaskClient:
        settings = make_settings(tmp_path, database_url, trusted_proxies=trusted_proxies)
        service = build_service(settings, clock=clock)
        services.append(service)
        return make_app(service).test_client()

    yield make
    for service in services:
        service.close()


def diagnose(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(DIAGNOSE, headers=headers, environ_base={"REMOTE_ADDR": LAST_PROXY})
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_two_trusted_proxies_give_the_clients_address_scheme_and_host(client_for: Any) -> None:
    client = client_for(2)
    # The first proxy saw the client and says so; the second appends the first proxy.
    honest = {
        "X-Forwarded-For": f"{CLIENT}, {FIRST_PROXY}",
        "X-Forwarded-Proto": "https, http",
        "X-Forwarded-Host": "auth.example.com, internal.lb",
    }

    report = diagnose(client, honest)

    assert report["client_ip"] == CLIENT
    assert report["scheme"] == "https"
    assert report["host"] == "auth.example.com"


def test_a_forged_hop_sent_by_the_client_is_ignored(client_for: Any) -> None:
    client = client_for(2)
    # The client sent X-Forwarded-For/-Proto/-Host of its own; the proxies appended theirs.
    forged = {
        "X-Forwarded-For": f"{FORGED}, {CLIENT}, {FIRST_PROXY}",
        "X-Forwarded-Proto": "https, https, http",
        "X-Forwarded-Host": "evil.test, auth.example.com, internal.lb",
    }

    report = diagnose(client, forged)

    assert report["client_ip"] == CLIENT  # the hop the first trusted proxy added
    assert report["host"] == "auth.example.com"


def test_one_hop_fewer_than_trusted_is_not_believed(client_for: Any) -> None:
    """With two trusted proxies but a single X-Forwarded-For entry (a client talking to the last
    proxy directly), ProxyFix believes nothing and the peer's address stays."""
    report = diagnose(client_for(2), {"X-Forwarded-For": FORGED})

    assert report["client_ip"] == LAST_PROXY


def test_zero_trusted_proxies_ignore_x_forwarded_entirely(client_for: Any) -> None:
    client = client_for(0)
    report = diagnose(
        client,
        {
            "X-Forwarded-For": f"{FORGED}, {CLIENT}",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.test",
        },
    )

    assert report["client_ip"] == LAST_PROXY
    assert report["scheme"] == "http"
    assert report["host"] == "localhost"
