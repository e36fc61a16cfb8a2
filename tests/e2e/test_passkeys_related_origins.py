"""A frontend on another site uses authgate's passkeys through WebAuthn Related Origin Requests,
in headless Chromium with the DevTools virtual authenticator: authgate is served (TLS) at
https://example.com — its RP ID — and lists https://shop.example.org at
/.well-known/webauthn; the frontend there registers a passkey for RP ID example.com and logs in
with it usernameless through authgate.js. Chromium fetches the well-known document itself: a
frontend not listed is refused by the browser.

The names lead to 127.0.0.1 inside Chromium (``--host-resolver-rules``, port 443 mapped to each
server's port), and the development CA's certificate is trusted by its key
(``--ignore-certificate-errors-spki-list``): WebAuthn refuses pages with certificate errors.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Browser, sync_playwright

from authgate.proxy.tls import issue_dev_certificate
from tests.e2e.browser import CHROMIUM, new_page, static_site
from tests.e2e.helpers import Server, server_group
from tests.helpers import PASSWORD, free_port

pytestmark = pytest.mark.usefixtures("page_problems")

RP_ID = "example.com"
API = f"https://{RP_ID}"
SHOP = "https://shop.example.org"
STRANGER = "https://stranger.example.net"


@dataclass(frozen=True)
class Deployment:
    server: Server
    ports: dict[str, int]  # host → the local port its 443 leads to
    cert_path: Path
    ca_path: Path


def _spki_hash(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("related")
    tls = issue_dev_certificate(
        folder / "tls",
        [RP_ID, "shop.example.org", "stranger.example.net"],
        now=datetime.now(UTC),
    )
    pages = folder / "pages"
    pages.mkdir()
    (pages / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Shop</title></head>"
        "<body><main><h1>Shop</h1></main></body></html>",
        encoding="utf-8",
    )
    api_port, shop_port, stranger_port = free_port(), free_port(), free_port()
    with (
        static_site(pages, shop_port, tls=(tls.cert_path, tls.key_path)),
        static_site(pages, stranger_port, tls=(tls.cert_path, tls.key_path)),
        server_group("sqlite", tmp_path_factory) as group,
    ):
        server = group.start_tls(
            tls.cert_path,
            tls.key_path,
            port=api_port,
            host=RP_ID,
            workers=2,
            public_url=API,
            webauthn_rp_id=RP_ID,
            origins=SHOP,
        )
        ports = {
            RP_ID: api_port,
            "shop.example.org": shop_port,
            "stranger.example.net": stranger_port,
        }
        yield Deployment(server, ports, tls.cert_path, tls.ca_path)


@pytest.fixture(scope="module")
def browser(deployment: Deployment) -> Iterator[Browser]:
    """This module's own Chromium: its names and the development certificate's key."""
    rules = ", ".join(f"MAP {host}:443 127.0.0.1:{port}" for host, port in deployment.ports.items())
    trusted = f"{_spki_hash(deployment.cert_path)},{_spki_hash(deployment.ca_path)}"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                f"--host-resolver-rules={rules}",
                f"--ignore-certificate-errors-spki-list={trusted}",
                "--no-sandbox",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


def _add_authenticator(context: Any, page: Any) -> None:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )


def _call(
    deployment: Deployment, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], Any]:
    """A request to the server at 127.0.0.1 as ``example.com``, its certificate checked
    against the development CA (the name is not the address: no host name check)."""
    context = ssl.create_default_context(cafile=str(deployment.ca_path))
    context.check_hostname = False
    connection = http.client.HTTPSConnection(
        "127.0.0.1", deployment.server.port, timeout=10, context=context
    )
    try:
        headers = {"Host": RP_ID, "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    finally:
        connection.close()


def _register(deployment: Deployment, address: str) -> None:
    status, _, body = _call(
        deployment, "POST", "/api/auth/register", {"email": address, "password": PASSWORD}
    )
    assert status == 201, body


_FLOW = """async ([api, email, password]) => {
    const { createClient } = await import(`${api}/authgate.js`);
    const auth = createClient({ baseUrl: api });
    await auth.login(email, password);
    let passkey;
    try {
        passkey = await auth.registerPasskey('Shop');
    } catch (error) {
        return { failed: `${error.name}: ${error.message}` };
    }
    await auth.logout();
    const before = await auth.me();
    const user = await auth.loginWithPasskey();
    return { passkey: passkey.name, before, user: user.email, me: (await auth.me()).email };
}"""


def test_the_well_known_document_lists_the_related_origin(deployment: Deployment) -> None:
    status, headers, body = _call(deployment, "GET", "/.well-known/webauthn")
    assert status == 200
    assert body == {"origins": [API, SHOP]}
    assert headers["Content-Type"] == "application/json"


def test_a_related_origin_registers_and_logs_in_with_a_passkey(
    browser: Browser, deployment: Deployment
) -> None:
    address = f"shop-{uuid.uuid4().hex[:8]}@example.com"
    _register(deployment, address)
    context, page = new_page(browser)
    try:
        _add_authenticator(context, page)
        page.goto(f"{SHOP}/index.html")
        result = page.evaluate(_FLOW, [API, address, PASSWORD])
        assert result == {"passkey": "Shop", "before": None, "user": address, "me": address}
    finally:
        context.close()


def test_an_origin_not_listed_is_refused_by_the_browser(
    browser: Browser, deployment: Deployment
) -> None:
    """The stranger's origin is not in AUTHGATE_ORIGINS (so not at /.well-known/webauthn):
    Chromium refuses the ceremony for RP ID example.com before any authenticator is asked."""
    context, page = new_page(browser)
    try:
        _add_authenticator(context, page)
        page.goto(f"{STRANGER}/index.html")
        outcome = page.evaluate(
            """async () => {
                try {
                    await navigator.credentials.create({ publicKey: {
                        rp: { id: 'example.com', name: 'x' },
                        user: { id: new Uint8Array(8), name: 'x', displayName: 'x' },
                        challenge: new Uint8Array(32),
                        pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
                    } });
                    return 'created';
                } catch (error) { return error.name; }
            }"""
        )
        assert outcome == "SecurityError"
    finally:
        context.close()
