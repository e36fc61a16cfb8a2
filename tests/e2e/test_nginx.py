"""authgate behind the real nginx, over TLS, exactly as `authgate nginx` configures it.

Two nginx instances whose configurations the ``authgate nginx`` command printed: one that leaves
CORS to the app (the default) and one that answers it itself (``--cors-at-proxy``), each in front
of its own gunicorn server (``AUTHGATE_TRUSTED_PROXIES=1``, public URL
``https://localhost:<that nginx's port>``), as a real deployment is. They listen on loopback high
ports with a certificate for ``localhost`` and ``127.0.0.1`` from ``issue_dev_certificate``;
clients verify it against the development CA.

nginx reaches gunicorn from 127.0.0.1; clients connect from other loopback addresses (127.0.0.2,
...), so the address the app reports can only come from ``X-Forwarded-For``. Each test that
spends the login rate limit uses an address of its own, because nginx counts per address.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import requests
from PIL import Image

from authgate.core.origins import parse_origin
from authgate.doctor import check_deployment, check_http_redirect
from authgate.integrations.flask.web_views import PAGE_CSP
from authgate.proxy.tls import issue_dev_certificate
from tests.e2e.helpers import (
    Server,
    ServerGroup,
    authgate_settings,
    register,
    server_group,
    unique_email,
)
from tests.e2e.nginx_harness import Nginx
from tests.helpers import BROWSER, FRONTEND, PASSWORD, free_port

MAX_BODY_BYTES = 65536
HSTS = "max-age=63072000"
LOGIN_RATE, LOGIN_BURST = "30r/m", 10  # one request per 2 s after a burst of 10
MODES = ["app", "proxy"]  # who answers CORS
LOOKALIKES = ["http://localhost:4100.evil.test", "https://evil.test", "http://localhost:41000"]
PREFLIGHT = {
    "Origin": FRONTEND,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-requested-with",
}


@dataclass
class Proxy:
    """One nginx in front of the server."""

    nginx: Nginx
    http_port: int
    https_port: int

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.https_port}"


@dataclass
class Deployment:
    group: ServerGroup  # of the default mode's server
    groups: dict[str, ServerGroup]  # by mode
    server: Server  # behind the default mode's nginx
    servers: dict[str, Server]  # by mode: each nginx has its own server (and public URL)
    tls_args: tuple[str, ...]  # --cert and --key
    proxies: dict[str, Proxy]  # by mode
    ca: ssl.SSLContext
    ca_path: Path
    webroot: Path
    public_url: str

    def client(self, local_address: str = "127.0.0.2", mode: str = "app") -> httpx.Client:
        """An https client of one nginx, connecting from ``local_address``; no proxies from the
        environment, no redirects followed, cookies passed explicitly by each test."""
        transport = httpx.HTTPTransport(verify=self.ca, local_address=local_address)
        return httpx.Client(
            transport=transport,
            base_url=self.proxies[mode].base_url,
            trust_env=False,
            timeout=10,
        )


def generate_config(group: ServerGroup, *args: str) -> str:
    """``authgate nginx`` run as a command with the server's own settings."""
    return group.cli("nginx", *args)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("nginx")
    cert = issue_dev_certificate(
        directory / "tls", ["localhost", "127.0.0.1"], now=datetime.now(UTC)
    )
    webroot = directory / "webroot"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    ports = {mode: (free_port(), free_port()) for mode in MODES}
    tls_args = ("--cert", str(cert.cert_path), "--key", str(cert.key_path))
    with contextlib.ExitStack() as stack:
        groups: dict[str, ServerGroup] = {}
        servers: dict[str, Server] = {}
        proxies: dict[str, Proxy] = {}
        for mode, (http_port, https_port) in ports.items():
            # One server per nginx, so that each proxy is at its server's public URL.
            group = stack.enter_context(server_group("sqlite", tmp_path_factory))
            (server,) = group.start(
                workers=2 if mode == "app" else 1,
                public_url=f"https://localhost:{https_port}",
                trusted_proxies="1",
                max_body_bytes=str(MAX_BODY_BYTES),
            )
            config = generate_config(
                group,
                *tls_args,
                "--http-port",
                str(http_port),
                "--https-port",
                str(https_port),
                "--listen-address",
                "127.0.0.1",
                "--webroot",
                str(webroot),
                "--upstream",
                f"127.0.0.1:{server.port}",
                "--login-rate",
                LOGIN_RATE,
                "--login-burst",
                str(LOGIN_BURST),
                *(["--cors-at-proxy"] if mode == "proxy" else []),
            )
            nginx = Nginx(directory / mode, config, ports=(http_port, https_port))
            stack.callback(nginx.stop)
            groups[mode], servers[mode] = group, server
            proxies[mode] = Proxy(nginx.start(), http_port, https_port)
        ca = ssl.create_default_context(cafile=str(cert.ca_path))
        yield Deployment(
            groups["app"],
            groups,
            servers["app"],
            servers,
            tls_args,
            proxies,
            ca,
            cert.ca_path,
            webroot,
            proxies["app"].base_url,
        )


# Helpers ---------------------------------------------------------------------------------------


def cors_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Every Access-Control-* header with all its occurrences (httpx would join them)."""
    names = {name.lower() for name in response.headers if name.lower().startswith("access-")}
    return {name: response.headers.get_list(name) for name in sorted(names)}


def comma_list(values: list[str]) -> list[str]:
    return [part.strip().lower() for value in values for part in value.split(",") if part.strip()]


def session_cookie(response: httpx.Response) -> tuple[str, set[str]]:
    """The session cookie's ``name=value`` and its attribute names, from the raw headers."""
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        if first.startswith("authgate_session="):
            return first, {attribute.split("=")[0].lower() for attribute in attributes}
    raise AssertionError(f"no session cookie in {response.headers.get_list('set-cookie')}")


def json_error(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    code: str = body["error"]["code"]
    return code


def browser_login(client: httpx.Client, email: str) -> httpx.Response:
    response = client.post(
        "/api/auth/login", json={"login": email, "password": PASSWORD}, headers=BROWSER
    )
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def email(deployment: Deployment) -> str:
    """A user of every mode's server, registered directly at gunicorn (registration through
    nginx is rate-limited)."""
    address = unique_email("nginx")
    for server in deployment.servers.values():
        register(server, address)
    return address


# TLS, login, what the app sees -----------------------------------------------------------------


def test_login_over_tls_through_nginx_sets_a_secure_cookie(
    deployment: Deployment, email: str
) -> None:
    with deployment.client() as client:
        response = browser_login(client, email)
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")

    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    cookie, attributes = session_cookie(response)
    assert {"secure", "httponly"} <= attributes
    assert response.json()["user"]["email"] == email
    with deployment.client() as client:
        me = client.get("/api/auth/me", headers={"Cookie": cookie})
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == email
    # Untrusted without the development CA: the handshake really used our certificate.
    with (
        httpx.Client(trust_env=False, verify=ssl.create_default_context()) as untrusting,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.get(deployment.proxies["app"].base_url + "/healthz")


def test_the_app_sees_the_clients_address_https_and_the_public_host(
    deployment: Deployment,
) -> None:
    with deployment.client(local_address="127.0.0.2") as client:
        honest = client.get("/api/auth/diagnose")
        # Whatever a client claims is replaced by nginx.
        forged = client.get(
            "/api/auth/diagnose",
            headers={
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "http",
                "X-Forwarded-Host": "evil.test",
            },
        )

    for response in (honest, forged):
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["client_ip"] == "127.0.0.2"  # nginx itself connects from 127.0.0.1
        assert report["scheme"] == "https"
        assert report["host"] == deployment.public_url.removeprefix("https://")
        assert report["public_url"] == deployment.public_url
        assert report["problems"] == []


def test_without_nginx_the_app_sees_the_connection(deployment: Deployment) -> None:
    """The control: straight to gunicorn, the app sees http and the peer's address."""
    report = deployment.server.get("/api/auth/diagnose").json()

    assert report["scheme"] == "http"
    assert report["client_ip"] == "127.0.0.1"
    assert any("AUTHGATE_TRUSTED_PROXIES" in problem for problem in report["problems"])


# Plain http ------------------------------------------------------------------------------------


def test_plain_http_redirects_to_the_public_https_url(deployment: Deployment) -> None:
    port = deployment.proxies["app"].http_port
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.get(f"http://localhost:{port}/api/auth/me?next=%2Faccount")
        spoofed = client.get(f"http://127.0.0.1:{port}/account", headers={"Host": "evil.test"})

    assert response.status_code == 301
    assert response.headers["location"] == f"{deployment.public_url}/api/auth/me?next=%2Faccount"
    assert "strict-transport-security" not in response.headers  # meaningless over http
    assert spoofed.status_code == 301
    assert spoofed.headers["location"] == f"{deployment.public_url}/account"


def test_acme_challenges_are_served_from_the_webroot(deployment: Deployment) -> None:
    token = uuid.uuid4().hex
    challenge = deployment.webroot / ".well-known" / "acme-challenge" / token
    challenge.write_text(f"{token}.thumbprint")
    port = deployment.proxies["app"].http_port
    with httpx.Client(trust_env=False, timeout=10) as client:
        found = client.get(f"http://localhost:{port}/.well-known/acme-challenge/{token}")
        missing = client.get(f"http://localhost:{port}/.well-known/acme-challenge/{token}x")

    assert found.status_code == 200
    assert found.text == f"{token}.thumbprint"
    assert missing.status_code == 404  # not redirected, not proxied


# Headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_hsts_and_security_headers_are_sent_exactly_once(deployment: Deployment, mode: str) -> None:
    with deployment.client(mode=mode) as client:
        api = client.get("/api/auth/me")  # the app's 401
        page = client.get("/")  # the app's login page, with its own security headers
        too_large = client.post("/api/auth/login", content=b"x" * (MAX_BODY_BYTES + 1))  # nginx

    assert (api.status_code, page.status_code, too_large.status_code) == (401, 200, 413)
    for response in (api, page, too_large):
        assert response.headers.get_list("strict-transport-security") == [HSTS]
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]
        assert response.headers.get_list("x-frame-options") == ["DENY"]
        assert "server" not in response.headers or response.headers["server"] == "nginx"
    # The app's own values win and are not doubled ...
    assert page.headers.get_list("content-security-policy") == [PAGE_CSP]
    assert page.headers.get_list("referrer-policy") == ["same-origin"]
    # ... and nginx fills in where the app sets none.
    for response in (api, too_large):
        assert response.headers.get_list("content-security-policy") == ["frame-ancestors 'none'"]
        assert response.headers.get_list("referrer-policy") == ["no-referrer"]


# CORS, answered in exactly one place ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_preflight_from_the_allowed_origin(deployment: Deployment, mode: str) -> None:
    with deployment.client(mode=mode) as client:
        response = client.options("/api/auth/login", headers=PREFLIGHT)

    assert response.status_code == (204 if mode == "proxy" else 200), response.text
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == [FRONTEND]
    assert headers["access-control-allow-credentials"] == ["true"]
    assert len(headers["access-control-allow-methods"]) == 1
    assert "post" in comma_list(headers["access-control-allow-methods"])
    assert len(headers["access-control-allow-headers"]) == 1
    assert {"content-type", "x-requested-with"} <= set(
        comma_list(headers["access-control-allow-headers"])
    )
    assert "*" not in comma_list(headers["access-control-allow-headers"])
    assert headers["access-control-max-age"] == ["600"]
    assert comma_list(response.headers.get_list("vary")).count("origin") == 1


@pytest.mark.parametrize("mode", MODES)
def test_credentialed_requests_from_the_allowed_origin(
    deployment: Deployment, email: str, mode: str
) -> None:
    with deployment.client(mode=mode) as client:
        login = browser_login(client, email)
        cookie, _ = session_cookie(login)
        me = client.get("/api/auth/me", headers={"Origin": FRONTEND, "Cookie": cookie})

    assert me.status_code == 200, me.text
    for response in (login, me):
        headers = cors_headers(response)
        assert headers["access-control-allow-origin"] == [FRONTEND]
        assert headers["access-control-allow-credentials"] == ["true"]
        assert len(headers["access-control-expose-headers"]) == 1
        assert "x-request-id" in comma_list(headers["access-control-expose-headers"])
        assert "access-control-allow-methods" not in headers  # only on preflights
        assert comma_list(response.headers.get_list("vary")).count("origin") == 1


@pytest.mark.parametrize("origin", LOOKALIKES)
@pytest.mark.parametrize("mode", MODES)
def test_lookalike_origins_get_no_cors_headers(
    deployment: Deployment, mode: str, origin: str
) -> None:
    with deployment.client(mode=mode) as client:
        preflight = client.options("/api/auth/login", headers={**PREFLIGHT, "Origin": origin})
        read = client.get("/api/auth/me", headers={"Origin": origin})
        write = client.post(
            "/api/auth/logout", headers={"Origin": origin, "X-Requested-With": "fetch"}
        )

    assert preflight.status_code < 300
    assert read.status_code == 401
    assert write.status_code in (401, 403)
    for response in (preflight, read, write):
        assert cors_headers(response) == {}, (response.status_code, response.headers)


@pytest.mark.parametrize("mode", MODES)
def test_what_the_app_makes_public_stays_public(deployment: Deployment, mode: str) -> None:
    """``/authgate.js`` is imported by pages of any origin, without credentials."""
    with deployment.client(mode=mode) as client:
        other = client.get("/authgate.js", headers={"Origin": "https://evil.test"})
        allowed = client.get("/authgate.js", headers={"Origin": FRONTEND})

    assert other.status_code == allowed.status_code == 200
    assert cors_headers(other) == {"access-control-allow-origin": ["*"]}
    if mode == "proxy":  # nginx answers an allowed origin the same way everywhere
        assert cors_headers(allowed)["access-control-allow-origin"] == [FRONTEND]
        assert cors_headers(allowed)["access-control-allow-credentials"] == ["true"]
    else:
        assert cors_headers(allowed) == {"access-control-allow-origin": ["*"]}


@pytest.mark.parametrize("mode", MODES)
def test_nginx_errors_carry_cors_headers_only_when_nginx_answers_cors(
    deployment: Deployment, mode: str
) -> None:
    """An error nginx makes itself (413) is readable by the allowed origin's page only when
    nginx answers CORS; in the default mode the app alone adds CORS headers."""
    with deployment.client(mode=mode) as client:
        response = client.post(
            "/api/auth/login",
            content=b"x" * (MAX_BODY_BYTES + 1),
            headers={**BROWSER, "Content-Type": "application/json"},
        )

    assert response.status_code == 413
    if mode == "proxy":
        assert cors_headers(response)["access-control-allow-origin"] == [FRONTEND]
    else:
        assert cors_headers(response) == {}


# Body limit ------------------------------------------------------------------------------------


def _login_body(size: int) -> bytes:
    """A JSON login body of exactly ``size`` bytes."""
    prefix, suffix = b'{"login":"nobody@example.com","password":"', b'"}'
    return prefix + b"p" * (size - len(prefix) - len(suffix)) + suffix


@pytest.mark.parametrize("mode", MODES)
def test_a_body_over_the_limit_is_refused_by_nginx_as_json(
    deployment: Deployment, mode: str
) -> None:
    with deployment.client(mode=mode, local_address="127.0.0.5") as client:
        over = client.post(
            "/api/auth/register",
            content=_login_body(MAX_BODY_BYTES + 1),
            headers={"Content-Type": "application/json"},
        )
        at_limit = client.post(
            "/api/auth/login",
            content=_login_body(MAX_BODY_BYTES),
            headers={"Content-Type": "application/json"},
        )

    assert over.status_code == 413
    assert json_error(over) == "payload_too_large"
    assert str(MAX_BODY_BYTES) in over.json()["error"]["message"]
    assert "x-request-id" not in over.headers  # nginx's answer, the app never saw it
    # A body of exactly the limit reaches the app, which refuses it for another reason.
    assert at_limit.status_code not in (413, 429), at_limit.text
    assert at_limit.status_code >= 400
    assert "x-request-id" in at_limit.headers


def test_the_app_refuses_a_body_over_the_same_limit(deployment: Deployment) -> None:
    """Straight to gunicorn, bypassing nginx: the app enforces the limit nginx was given."""
    over = deployment.server.post(
        "/api/auth/login",
        data=_login_body(MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    at_limit = deployment.server.post(
        "/api/auth/login",
        data=_login_body(MAX_BODY_BYTES),
        headers={"Content-Type": "application/json"},
    )

    assert over.status_code == 413
    assert over.json()["error"]["code"] == "payload_too_large"
    assert at_limit.status_code != 413


def _noisy_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes per pixel."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_an_avatar_larger_than_the_json_limit_passes_nginx(
    deployment: Deployment, email: str
) -> None:
    """nginx gives the avatar path the app's avatar limit, not the 1 MiB JSON limit."""
    picture = _noisy_png(900)
    assert MAX_BODY_BYTES < len(picture) < 5 * 1024 * 1024
    with deployment.client(local_address="127.0.0.6") as client:
        cookie, _ = session_cookie(browser_login(client, email))
        response = client.post(
            "/api/auth/me/avatar",
            files={"avatar": ("me.png", picture, "image/png")},
            headers={**BROWSER, "Cookie": cookie},
        )

    assert response.status_code == 200, response.text
    assert response.json()["user"]["avatar_url"].startswith(deployment.public_url + "/avatars/")


AVATAR_LIMIT = 5 * 1024 * 1024 + 64 * 1024  # AUTHGATE_AVATAR_MAX_BYTES + the multipart envelope


def test_an_avatar_over_its_limit_is_refused_by_nginx_and_the_app_alike(
    deployment: Deployment, email: str
) -> None:
    picture = os.urandom(AVATAR_LIMIT + 1024)  # over the limit: its content does not matter
    with deployment.client(local_address="127.0.0.10") as client:
        cookie, _ = session_cookie(browser_login(client, email))
        through_nginx = client.post(
            "/api/auth/me/avatar",
            files={"avatar": ("me.png", picture, "image/png")},
            headers={**BROWSER, "Cookie": cookie},
        )
    direct = deployment.server.post(
        "/api/auth/me/avatar",
        files={"avatar": ("me.png", picture, "image/png")},
        headers={**BROWSER, "Cookie": cookie},
    )

    assert through_nginx.status_code == direct.status_code == 413, direct.text
    assert "x-request-id" not in through_nginx.headers  # nginx's answer
    assert json_error(through_nginx) == direct.json()["error"]["code"] == "payload_too_large"
    message = through_nginx.json()["error"]["message"]
    assert "at most 5 MB" in message and str(AVATAR_LIMIT) in message
    assert str(MAX_BODY_BYTES) not in message  # not the JSON endpoints' limit
    assert through_nginx.headers.get_list("strict-transport-security") == [HSTS]


# Rate limit ------------------------------------------------------------------------------------


def test_a_login_burst_gets_429_from_nginx(deployment: Deployment, email: str) -> None:
    statuses: list[int] = []
    refused: list[httpx.Response] = []
    with deployment.client(local_address="127.0.0.3") as client:
        for _ in range(30):
            response = client.post("/api/auth/login", json={"login": email, "password": PASSWORD})
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused.append(response)

    assert set(statuses) == {200, 429}, statuses
    assert statuses[: LOGIN_BURST + 1] == [200] * (LOGIN_BURST + 1), statuses
    assert len(refused) >= 15, statuses  # 1 request per 2 s refills while the burst runs
    for response in refused:
        assert json_error(response) == "rate_limited"
        assert response.headers.get_list("retry-after") == ["2"]
        assert response.headers.get_list("strict-transport-security") == [HSTS]
        assert "x-request-id" not in response.headers  # from nginx, not the app's throttle


@pytest.mark.parametrize("mode", MODES)
def test_preflights_do_not_spend_the_login_rate(deployment: Deployment, mode: str) -> None:
    address = "127.0.0.4" if mode == "app" else "127.0.0.6"
    with deployment.client(mode=mode, local_address=address) as client:
        statuses = {
            client.options("/api/auth/login", headers=PREFLIGHT).status_code for _ in range(30)
        }
        login = client.post(
            "/api/auth/login", json={"login": "nobody@example.com", "password": "wrong password"}
        )

    assert statuses == {204 if mode == "proxy" else 200}
    assert login.status_code == 401, login.text  # the app's answer, not nginx's 429


@pytest.mark.parametrize("mode", MODES)
def test_the_provider_list_and_oauth_preflights_are_not_rate_limited(
    deployment: Deployment, mode: str
) -> None:
    """The login and account pages read /api/oauth/providers on every load."""
    address = "127.0.0.7" if mode == "app" else "127.0.0.8"
    preflight = {**PREFLIGHT, "Access-Control-Request-Method": "GET"}
    with deployment.client(mode=mode, local_address=address) as client:
        providers = [client.get("/api/oauth/providers") for _ in range(30)]
        preflights = [
            client.options("/api/oauth/example/login", headers=preflight) for _ in range(30)
        ]

    assert {r.status_code for r in providers} == {200}, [r.text for r in providers[-1:]]
    assert {r.status_code for r in preflights} == {204 if mode == "proxy" else 200}
    assert cors_headers(preflights[-1])["access-control-allow-origin"] == [FRONTEND]


def test_a_burst_of_provider_logins_gets_429_from_nginx(deployment: Deployment) -> None:
    with deployment.client(local_address="127.0.0.9") as client:
        statuses = [client.get("/api/oauth/example/login").status_code for _ in range(30)]
        refused = client.get("/api/oauth/example/login")

    # The app answers 404 (no such provider) until nginx's limit refuses the rest.
    assert statuses[: LOGIN_BURST + 1] == [404] * (LOGIN_BURST + 1), statuses
    assert set(statuses) == {404, 429}, statuses
    assert statuses.count(429) >= 15, statuses
    assert refused.status_code == 429
    assert json_error(refused) == "rate_limited"
    assert "x-request-id" not in refused.headers  # nginx's answer


# First start ----------------------------------------------------------------------------------


def test_the_acme_bootstrap_serves_certbots_challenges_before_any_certificate(
    deployment: Deployment, tmp_path: Path
) -> None:
    http_port = free_port()
    config = generate_config(
        deployment.group,
        "--acme-bootstrap",
        *("--http-port", str(http_port), "--listen-address", "127.0.0.1"),
        *("--webroot", str(deployment.webroot)),
    )
    token = uuid.uuid4().hex
    (deployment.webroot / ".well-known" / "acme-challenge" / token).write_text(token + ".key")
    nginx = Nginx(tmp_path / "nginx", config, ports=(http_port,))
    assert nginx.check().returncode == 0
    with nginx, httpx.Client(trust_env=False, timeout=10) as client:
        challenge = client.get(f"http://localhost:{http_port}/.well-known/acme-challenge/{token}")
        site = client.get(f"http://localhost:{http_port}/api/auth/me")

    assert challenge.status_code == 200
    assert challenge.text == token + ".key"
    assert site.status_code == 503
    assert json_error(site) == "service_unavailable"


# authgate doctor -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_doctor_passes_the_generated_nginx(deployment: Deployment, mode: str) -> None:
    """On a non-443 port too: the redirect is probed on nginx's http port (--http-url)."""
    proxy = deployment.proxies[mode]
    output = deployment.groups[mode].cli(
        "doctor",
        "--json",
        *("--url", proxy.base_url, "--ca-file", str(deployment.ca_path)),
        *("--http-url", f"http://localhost:{proxy.http_port}/"),
    )

    document = json.loads(output)
    findings = document["findings"]
    assert [f for f in findings if f["level"] == "error"] == []
    assert document["ok"] is True
    url = {f["check"]: f["level"] for f in findings if f["group"].startswith("url")}
    assert [check for check, level in url.items() if level != "ok"] == [], findings
    for check in (
        "url.tls.valid",
        "url.reachable",
        "url.hsts.present",
        "url.redirect.permanent",
        "url.cors.preflight",
        "url.cors.lookalikes_refused",
        "url.public_url.matches",
        "url.server.view",  # the app sees https and the public host through nginx
    ):
        assert url.get(check) == "ok", (check, findings)


def test_doctor_off_the_public_url_does_not_blame_the_proxy(deployment: Deployment) -> None:
    """Straight to gunicorn (AUTHGATE_TRUSTED_PROXIES=1, no proxy in between): the app sees http
    and its own address, rightly. One cause, one finding: --url is not the public URL; no
    "set AUTHGATE_TRUSTED_PROXIES" (it is set) and no proxy passing the wrong host."""
    server = deployment.server
    settings = authgate_settings(server.env)
    assert settings.trusted_proxies == 1

    findings = check_deployment(f"http://localhost:{server.port}", settings, timeout=5)

    by_check = {f.check: f for f in findings}
    assert by_check["url.public_url.differs"].level == "warning"
    assert deployment.public_url in by_check["url.public_url.differs"].message
    server_checks = [(f.check, f.level) for f in findings if f.group == "url.server"]
    assert server_checks == [("url.server.not_judged", "ok")]
    assert f"the server sees http://localhost:{server.port}: not judged" in (
        by_check["url.server.not_judged"].message
    )


def test_doctor_on_nginxs_tls_port_does_not_mistake_its_400_for_http(
    deployment: Deployment,
) -> None:
    """Plain http sent to the TLS port gets nginx's 400: not a site served over http."""
    proxy = deployment.proxies["app"]
    output = deployment.group.cli(
        "doctor",
        "--json",
        *("--url", proxy.base_url, "--ca-file", str(deployment.ca_path)),
        *("--http-url", f"http://localhost:{proxy.https_port}/"),
    )

    findings = {f["check"]: f["level"] for f in json.loads(output)["findings"]}
    assert findings["url.redirect.tls_port"] == "ok"
    assert "url.redirect.serves_http" not in findings


def test_doctor_warns_when_the_default_http_port_speaks_tls(deployment: Deployment) -> None:
    """`listen 80 ssl;` by mistake: the port browsers go to for http:// answers nginx's 400.
    Probed as the default port (not named with --http-url), that is a missing redirect."""
    proxy = deployment.proxies["app"]
    with requests.Session() as session:
        finding = check_http_redirect(
            session,
            f"http://localhost:{proxy.https_port}/",
            parse_origin(proxy.base_url),
            timeout=5,
        )

    assert (finding.check, finding.level) == ("url.redirect.not_redirected", "warning")
    assert f"http://localhost:{proxy.https_port}/ speaks TLS" in finding.message


# Upstream down ---------------------------------------------------------------------------------


def test_an_app_that_does_not_answer_is_a_json_503(deployment: Deployment, tmp_path: Path) -> None:
    http_port, https_port = free_port(), free_port()
    config = generate_config(
        deployment.group,
        *deployment.tls_args,
        "--http-port",
        str(http_port),
        "--https-port",
        str(https_port),
        "--listen-address",
        "127.0.0.1",
        "--upstream",
        f"127.0.0.1:{free_port()}",  # nothing listens there
    )
    with Nginx(tmp_path / "nginx", config, ports=(http_port, https_port)):
        transport = httpx.HTTPTransport(verify=deployment.ca)
        with httpx.Client(transport=transport, trust_env=False, timeout=10) as client:
            response = client.get(f"https://localhost:{https_port}/api/auth/me")
            # The avatar location has error pages of its own: the upstream's is among them.
            avatar = client.post(
                f"https://localhost:{https_port}/api/auth/me/avatar",
                files={"avatar": ("me.png", b"x", "image/png")},
            )

    for answer in (response, avatar):
        assert answer.status_code == 503
        assert json_error(answer) == "service_unavailable"
        assert answer.headers.get_list("strict-transport-security") == [HSTS]
