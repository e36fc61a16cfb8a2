"""A real OpenID Provider for the OAuth/OIDC end-to-end tests: panva's ``oidc-provider`` 9.

``OidcProvider`` runs ``tests/peers/oidc-provider/server.mjs`` with node on ``127.0.0.1`` and waits
for its discovery document. The OP:

- registers the given confidential clients (``client_id``, ``client_secret``, ``redirect_uris``;
  plain ``http://127.0.0.1:…`` redirect URIs are fine, matched exactly); they authenticate at the
  token endpoint with ``client_secret_basic`` or ``client_secret_post``;
- requires PKCE (S256 only) on every authorization request; ``nonce`` is optional for the code
  flow, but echoed in the id_token when sent;
- signs id_tokens RS256 with a key made at startup (its ``kid`` is in ``jwks_uri``), and puts the
  claims of the requested scopes (``email``, ``email_verified``, ``name``, ``picture``,
  ``preferred_username``) in the id_token as well as in the userinfo response;
- accepts any account id at its login page: ``sub`` is the id, ``email`` the id if it has an ``@``
  (else ``<id>@example.test``), ``email_verified`` false only for ids starting ``unverified``;
- puts ``iss`` in every authorization response, success or error, and says so in its discovery
  document (RFC 9207) — or, started with ``iss_parameter=False``, does neither, as an OP from
  before RFC 9207;
- can be told to misbehave once (``tamper``, ``fault``) for the negative tests, and to rotate
  its signing key (``rotate_signing_key``); ``request_counts`` says how many requests reached
  its token and userinfo endpoints.

``complete_login`` plays the browser through the OP's login and consent pages.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tests.helpers import free_port
from tests.server_process import log_tail

PEER_DIR = Path(__file__).resolve().parents[2] / "peers" / "oidc-provider"
STARTUP_TIMEOUT_SECONDS = 20.0

TOKEN_TAMPER_MODES = (
    "wrong_iss",  # iss = "https://evil.example"
    "wrong_aud",  # aud = "someone-else"
    "multiple_aud_without_azp",  # aud = [client_id, "other"], no azp
    "wrong_azp",  # azp = "other"
    "expired",  # exp = now - 3600, iat = now - 7200
    "expired_exp_only",  # exp = now - 120, iat = now - 300 (recent enough): only exp is wrong
    "issued_in_future",  # iat = now + 3600, exp = now + 7200
    "wrong_nonce",  # nonce = "not-the-nonce"
    "missing_nonce",  # no nonce claim
    "unknown_key",  # RS256 with a fresh key whose kid is not in the JWKS
    "alg_none",  # header {"alg": "none"}, empty signature
    "hs256_with_public_key",  # HS256 keyed with the OP's public key PEM (SPKI), real kid
)
"""Modes that change the id_token of the next successful token response. All but the last three
are re-signed with the OP's real key and kid: only the named claim is wrong."""

USERINFO_TAMPER_MODES = (
    "userinfo_sub_mismatch",
)  # the next userinfo response has sub "someone-else"
TAMPER_MODES = TOKEN_TAMPER_MODES + USERINFO_TAMPER_MODES

FAULT_ENDPOINTS = ("discovery", "jwks", "token", "userinfo")
FAULTS = (
    "hang",  # the request is accepted and never answered (until the client gives up)
    "503",  # an HTML error page, as from a proxy in front of a provider that is down
    "429",  # JSON {"error": "slow_down"} with Retry-After: 30
)


class OidcProviderError(RuntimeError):
    """The OP did not start, or a login through it did not go as a browser's would."""


class OidcProvider:
    """``oidc-provider`` in a node process on ``127.0.0.1:port`` (a free port if none is given).

    Use as a context manager or call ``stop()``. ``clients`` is a list of
    ``{"client_id": ..., "client_secret": ..., "redirect_uris": [...]}``.
    """

    def __init__(
        self,
        *,
        clients: Sequence[Mapping[str, Any]],
        port: int | None = None,
        log_path: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        iss_parameter: bool = True,
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise OidcProviderError("node is not on PATH: the OIDC tests need Node.js 20 or later")
        if not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise OidcProviderError(
                f"{PEER_DIR / 'node_modules'} is missing: run "
                "`npm ci --prefix tests/peers/oidc-provider` (scripts/bootstrap does)"
            )
        self.port = port if port is not None else free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.clients = [dict(client) for client in clients]
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None
        self._final_log: str | None = None
        if log_path is None:
            self._log_dir = tempfile.TemporaryDirectory(prefix="oidc-provider-")
            log_path = Path(self._log_dir.name) / "oidc-provider.log"
        self.log_path = log_path
        self._http = httpx.Client(trust_env=False, timeout=10)
        env = dict(os.environ)
        env.update(
            {
                "PORT": str(self.port),
                "ISSUER": self.issuer,
                "CLIENTS": json.dumps(self.clients),
                "ISS_PARAMETER": "on" if iss_parameter else "off",
            }
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [node, "server.mjs"],
                cwd=PEER_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.discovery: dict[str, Any] = self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    # Lifecycle -----------------------------------------------------------------------------

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        url = self.issuer + "/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OidcProviderError(
                    f"oidc-provider exited with {self.process.returncode} before it answered:\n"
                    f"{self.log()}"
                )
            try:
                response = self._http.get(url, timeout=1)
            except httpx.TransportError as e:
                last_error = repr(e)
            else:
                if response.status_code == 200:
                    document: dict[str, Any] = response.json()
                    return document
                last_error = f"{response.status_code} {response.text[:200]}"
            time.sleep(0.05)
        raise OidcProviderError(
            f"oidc-provider on port {self.port} did not serve {url} within {timeout:.0f} s "
            f"({last_error}):\n{self.log()}"
        )

    def log(self) -> str:
        """The last 8000 characters of the node process's output."""
        if self._final_log is not None:
            return self._final_log
        return log_tail(self.log_path)

    def stop(self) -> None:
        """SIGTERM the node process, wait, kill it if it lingers. Safe to call twice."""
        process = self.process
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._http.close()
        if self._log_dir is not None:
            self._final_log = self.log()
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> OidcProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Endpoints -----------------------------------------------------------------------------

    @property
    def authorization_endpoint(self) -> str:
        return str(self.discovery["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.discovery["token_endpoint"])

    @property
    def userinfo_endpoint(self) -> str:
        return str(self.discovery["userinfo_endpoint"])

    @property
    def jwks_uri(self) -> str:
        return str(self.discovery["jwks_uri"])

    def jwks(self) -> dict[str, Any]:
        """The OP's public JWK set (one RS256 key; after rotations, the newest first)."""
        response = self._http.get(self.jwks_uri)
        response.raise_for_status()
        keys: dict[str, Any] = response.json()
        return keys

    def public_key_pem(self) -> bytes:
        """The signing key's public half, PEM (SPKI): the HMAC secret ``hs256_with_public_key``
        uses."""
        response = self._http.get(self.issuer + "/__test/public-key.pem")
        response.raise_for_status()
        return response.content

    # Misbehaving ---------------------------------------------------------------------------

    def tamper(self, mode: str) -> None:
        """Arm a one-shot change of the next token response's id_token (or, for
        ``userinfo_sub_mismatch``, of the next userinfo response). ``"none"`` disarms."""
        if mode != "none" and mode not in TAMPER_MODES:
            raise ValueError(f"unknown tamper mode {mode!r}; one of {TAMPER_MODES}")
        response = self._http.post(self.issuer + "/__test/tamper", json={"mode": mode})
        if response.status_code != 200 or response.json() != {"mode": mode}:
            raise OidcProviderError(f"tamper {mode!r}: {response.status_code} {response.text}")

    def fault(self, endpoint: str, fault: str) -> None:
        """Make the next request to ``endpoint`` fail with ``fault`` (one of ``FAULTS``), once;
        ``"none"`` disarms."""
        if endpoint not in FAULT_ENDPOINTS or (fault != "none" and fault not in FAULTS):
            raise ValueError(f"unknown fault {endpoint!r} {fault!r}")
        response = self._http.post(
            self.issuer + "/__test/fault", json={"endpoint": endpoint, "fault": fault}
        )
        if response.status_code != 200:
            raise OidcProviderError(f"fault {endpoint} {fault}: {response.text}")

    def rotate_signing_key(self) -> str:
        """A new signing key (its kid is returned) signs every later id_token; the JWKS lists
        it first and keeps the old ones."""
        response = self._http.post(self.issuer + "/__test/rotate-key")
        response.raise_for_status()
        return str(response.json()["kid"])

    def request_counts(self) -> dict[str, int]:
        """How many requests reached the token and userinfo endpoints since the start:
        ``{"token": n, "userinfo": n}``."""
        response = self._http.get(self.issuer + "/__test/requests")
        response.raise_for_status()
        return {name: int(count) for name, count in response.json().items()}

    def armed_tamper_mode(self) -> str:
        """The mode armed and not yet applied, or ``"none"``."""
        response = self._http.get(self.issuer + "/__test/tamper")
        response.raise_for_status()
        return str(response.json()["mode"])

    # Logging in ----------------------------------------------------------------------------

    def complete_login(
        self,
        client: httpx.Client,
        authorization_url: str,
        *,
        account: str = "alice@example.test",
        password: str = "any",
        max_steps: int = 12,
    ) -> str:
        """Go through the OP from ``authorization_url`` as a browser would, and return the URL
        it finally redirects to outside itself (the relying party's redirect_uri with ``code``,
        ``state`` and ``iss``, or with ``error``), without requesting that URL.

        The login form gets ``account`` (and ``password``, which is not checked); the consent
        form is submitted as it is (granting the requested scopes and claims). ``client`` keeps
        the OP's cookies, so a second login with the same client skips the login page and
        reuses the first account: use a fresh client, or ``prompt=login`` in the authorization
        URL, to log in as someone else.
        """
        response = client.get(authorization_url, follow_redirects=False)
        for _ in range(max_steps):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["Location"])
                if not self._is_own(location):
                    return location
                response = client.get(location, follow_redirects=False)
                continue
            if response.status_code != 200:
                raise OidcProviderError(
                    f"the OP answered {response.status_code} at {response.url}: "
                    f"{response.text[:500]}\n{self.log()}"
                )
            form = _find_form(response.text)
            if form is None:
                raise OidcProviderError(
                    f"no form at {response.url}: {response.text[:500]}\n{self.log()}"
                )
            fields = dict(form.fields)
            if "login" in form.field_names:
                fields["login"] = account
                fields["password"] = password
            action = urljoin(str(response.url), form.action or str(response.url))
            response = client.post(action, data=fields, follow_redirects=False)
        raise OidcProviderError(f"the login did not finish in {max_steps} steps\n{self.log()}")

    def _is_own(self, url: str) -> bool:
        own, other = urlsplit(self.issuer), urlsplit(url)
        return (own.scheme, own.netloc) == (other.scheme, other.netloc)


class _Form:
    def __init__(self, action: str | None, method: str) -> None:
        self.action = action
        self.method = method
        self.fields: dict[str, str] = {}
        self.field_names: set[str] = set()


class _FormParser(HTMLParser):
    """The first form of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.form: _Form | None = None
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and self.form is None:
            self.form = _Form(attributes.get("action"), (attributes.get("method") or "get").lower())
        elif tag == "input" and self.form is not None and not self._done:
            name = attributes.get("name")
            if name:
                self.form.field_names.add(name)
                self.form.fields[name] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._done = True


def _find_form(html: str) -> _Form | None:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.form
