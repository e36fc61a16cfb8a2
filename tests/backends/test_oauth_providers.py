"""The provider clients' caches of discovery documents and JWKS, and their behaviour when a
provider is slow, down or rotating its keys — with a fake HTTP layer and an injected clock (the
protocol itself is tested end to end against a real OpenID Provider in tests/e2e)."""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from authgate.backends import oauth_providers as providers
from authgate.backends.oauth_providers import GitHubClient, OpenIDConnectClient, ProviderInfo
from authgate.config import OAuthProviderSettings, Settings
from authgate.core.clocks import FrozenClock
from authgate.core.oauth import FlowSecrets, ResponseIssuer
from authgate.errors import (
    OAuthInvalidIdTokenError,
    OAuthProviderResponseError,
    OAuthProviderUnavailableError,
)

ISSUER = "https://idp.example"
DISCOVERY_URL = ISSUER + "/.well-known/openid-configuration"
JWKS_URL = ISSUER + "/jwks"
FLOW = FlowSecrets(state="s", nonce="n-1", code_verifier="v" * 43, binding="b")


def discovery(issuer: str = ISSUER, **overrides: Any) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": ISSUER + "/authorize",
        "token_endpoint": ISSUER + "/token",
        "jwks_uri": JWKS_URL,
        "id_token_signing_alg_values_supported": ["RS256"],
        **overrides,
    }


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(*keys: tuple[str, rsa.RSAPrivateKey]) -> dict[str, Any]:
    out = []
    for kid, key in keys:
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        out.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
    return {"keys": out}


def response(status: int, body: object) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode()
    r.headers["Content-Type"] = "application/json"
    r.url = "https://idp.example/x"
    r.request = requests.Request("GET", r.url).prepare()
    return r


class FakeHttp:
    """Answers GETs from ``routes`` (a body, a ``requests.Response``, an exception, or a
    callable giving one of those), and counts the calls per URL."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.calls: dict[str, int] = {}
        self.timeouts: list[object] = []

    def __call__(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls[url] = self.calls.get(url, 0) + 1
        self.timeouts.append(kwargs.get("timeout"))
        answer = self.routes[url]
        if callable(answer) and not isinstance(answer, requests.Response):
            answer = answer()
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, requests.Response):
            return answer
        return response(200, answer)


# AUTHGATE_OAUTH_HTTP_TIMEOUT_SECONDS by default.
DEFAULT_TIMEOUT_SECONDS = Settings.model_fields["oauth_http_timeout_seconds"].default


def make_client(
    http: FakeHttp,
    clock: FrozenClock,
    *,
    kind: str = "oidc",
    issuer: str = ISSUER,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> OpenIDConnectClient:
    settings = OAuthProviderSettings(
        kind=kind,  # type: ignore[arg-type]
        client_id="client-1",
        client_secret="secret",  # type: ignore[arg-type]
        issuer=issuer,
    )
    return OpenIDConnectClient(
        ProviderInfo("corp", "Corp"),
        settings,
        clock,
        timeout_seconds=timeout_seconds,
        http_get=http,
    )


def id_token(
    key: rsa.RSAPrivateKey, kid: str, clock: FrozenClock, *, iss: str = ISSUER, **claims: Any
) -> str:
    now = int(clock.timestamp())
    payload = {
        "iss": iss,
        "sub": "user-1",
        "aud": "client-1",
        "iat": now,
        "exp": now + 300,
        "nonce": FLOW.nonce,
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


# The timeout -------------------------------------------------------------------------------


def test_every_call_has_the_configured_timeout(clock: FrozenClock) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery()})
    client = make_client(http, clock, timeout_seconds=1.5)

    client.metadata()

    assert http.timeouts == [(1.5, 1.5)]
    assert make_client(http, clock, timeout_seconds=30).timeout == (5.0, 30)


# The discovery cache ----------------------------------------------------------------------


def test_the_discovery_document_is_kept_for_an_hour(clock: FrozenClock) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery()})
    client = make_client(http, clock)

    first = client.metadata()
    clock.advance(3599)
    assert client.metadata() is first
    assert http.calls[DISCOVERY_URL] == 1

    http.routes[DISCOVERY_URL] = discovery(token_endpoint=ISSUER + "/token2")
    clock.advance(2)
    assert client.metadata().token_endpoint == ISSUER + "/token2"
    assert http.calls[DISCOVERY_URL] == 2


def test_a_stale_discovery_document_outlives_an_outage(clock: FrozenClock) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery()})
    client = make_client(http, clock)
    first = client.metadata()
    http.routes[DISCOVERY_URL] = requests.ConnectionError("refused")
    clock.advance(3601)

    assert client.metadata() is first
    assert http.calls[DISCOVERY_URL] == 2


def test_without_a_copy_an_unreachable_provider_is_unavailable(clock: FrozenClock) -> None:
    http = FakeHttp({DISCOVERY_URL: requests.ReadTimeout("slow")})

    with pytest.raises(OAuthProviderUnavailableError):
        make_client(http, clock).metadata()


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_provider_answering_5xx_or_429_is_unavailable(clock: FrozenClock, status: int) -> None:
    http = FakeHttp({DISCOVERY_URL: response(status, {"error": "busy"})})

    with pytest.raises(OAuthProviderUnavailableError):
        make_client(http, clock).metadata()


def test_a_discovery_document_for_another_issuer_is_refused_at_fetch_time(
    clock: FrozenClock,
) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery(issuer="https://evil.example")})

    with pytest.raises(OAuthProviderResponseError, match="another issuer"):
        make_client(http, clock).metadata()


def test_a_later_document_for_another_issuer_keeps_the_good_copy(clock: FrozenClock) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery()})
    client = make_client(http, clock)
    first = client.metadata()
    http.routes[DISCOVERY_URL] = discovery(
        issuer="https://evil.example", token_endpoint="https://evil.example/token"
    )
    clock.advance(3601)

    assert client.metadata() is first
    assert client.metadata().token_endpoint == ISSUER + "/token"


# Backing off after a failure --------------------------------------------------------------


def test_after_a_failed_fetch_logins_fail_fast_for_a_few_seconds(clock: FrozenClock) -> None:
    http = FakeHttp({DISCOVERY_URL: requests.ConnectTimeout("down")})
    client = make_client(http, clock)
    with pytest.raises(OAuthProviderUnavailableError):
        client.metadata()

    clock.advance(4)
    with pytest.raises(OAuthProviderUnavailableError):
        client.metadata()
    assert http.calls[DISCOVERY_URL] == 1  # no second wait for a provider that is down

    http.routes[DISCOVERY_URL] = discovery()
    clock.advance(2)
    assert client.metadata().issuer == ISSUER
    assert http.calls[DISCOVERY_URL] == 2


def test_after_a_failed_refetch_the_stale_copy_serves_without_asking_again(
    clock: FrozenClock,
) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery()})
    client = make_client(http, clock)
    first = client.metadata()
    http.routes[DISCOVERY_URL] = requests.ConnectionError("down")
    clock.advance(3601)
    assert client.metadata() is first

    clock.advance(3)
    assert client.metadata() is first
    assert http.calls[DISCOVERY_URL] == 2
    clock.advance(3)
    assert client.metadata() is first
    assert http.calls[DISCOVERY_URL] == 3


def test_each_login_in_the_backoff_gets_its_own_copy_of_the_error(clock: FrozenClock) -> None:
    """One exception object raised by many requests would collect all their frames."""
    http = FakeHttp({DISCOVERY_URL: discovery(issuer="https://evil.example")})
    client = make_client(http, clock)
    with pytest.raises(OAuthProviderResponseError) as fetched:
        client.metadata()

    errors = []
    for _ in range(3):
        with pytest.raises(OAuthProviderResponseError) as raised:
            client.metadata()
        errors.append(raised.value)

    assert http.calls[DISCOVERY_URL] == 1
    assert len({id(e) for e in [fetched.value, *errors]}) == 4
    for error in errors:
        assert type(error) is OAuthProviderResponseError
        assert error.code == "oauth_provider_error"
        assert error.message == fetched.value.message
        assert "another issuer" in error.message
        assert error.__cause__ is None and error.__suppress_context__
    depths = {len(traceback.extract_tb(e.__traceback__)) for e in errors}
    assert len(depths) == 1  # no error carries the frames of the logins before it


# One fetch at a time, without holding a lock across it ------------------------------------


class Gate:
    """A fetch that blocks until released: the provider hanging."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> object:
        self.entered.set()
        assert self.release.wait(10)
        return self.answer


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = target()
        except Exception as e:  # the test looks at it
            result["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def waits_for_a_fetch(thread: threading.Thread) -> bool:
    """Whether ``thread`` is blocked in a ``threading`` wait called by the provider clients
    (a follower waiting for the fetch in flight), not merely running or in a test's gate."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None and frame.f_code.co_filename != threading.__file__:
        frame = frame.f_back
    while frame is not None and frame.f_code.co_filename == threading.__file__:
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename == providers.__file__


def wait_until_waiting_for_a_fetch(thread: threading.Thread) -> None:
    deadline = time.monotonic() + 10
    while not waits_for_a_fetch(thread):
        assert thread.is_alive() and time.monotonic() < deadline, "it never waited for the fetch"
        time.sleep(0.005)


def test_while_one_refetch_hangs_the_others_use_the_stale_copy_at_once(
    clock: FrozenClock,
) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery()})
    client = make_client(http, clock)
    first = client.metadata()
    gate = Gate(discovery(token_endpoint=ISSUER + "/new"))
    http.routes[DISCOVERY_URL] = gate
    clock.advance(3601)
    leader, led = in_thread(client.metadata)
    assert gate.entered.wait(10)

    # Had they queued behind the hung fetch, this would block until the gate gave up (10 s),
    # and the leader would then have no new document.
    others = [client.metadata() for _ in range(5)]

    assert all(m is first for m in others)
    gate.release.set()
    leader.join(10)
    assert led["value"].token_endpoint == ISSUER + "/new"
    assert http.calls[DISCOVERY_URL] == 2
    assert client.metadata().token_endpoint == ISSUER + "/new"


def test_without_a_copy_the_others_wait_for_the_one_fetch(clock: FrozenClock) -> None:
    gate = Gate(discovery())
    http = FakeHttp({DISCOVERY_URL: gate})
    client = make_client(http, clock)
    leader, led = in_thread(client.metadata)
    assert gate.entered.wait(10)
    follower, followed = in_thread(client.metadata)

    gate.release.set()
    leader.join(10)
    follower.join(10)

    assert led["value"] is followed["value"]
    assert http.calls[DISCOVERY_URL] == 1


def test_a_follower_waits_no_longer_than_a_fetch_may_take(clock: FrozenClock) -> None:
    gate = Gate(discovery())
    http = FakeHttp({DISCOVERY_URL: gate})
    client = make_client(http, clock, timeout_seconds=0.1)  # a fetch takes at most 0.2 s
    leader, _ = in_thread(client.metadata)
    assert gate.entered.wait(10)

    started = time.monotonic()
    with pytest.raises(OAuthProviderUnavailableError):
        client.metadata()

    # It gave up (the fetch it waited for is still blocked); the upper bound is loose for CI.
    assert 0.15 < time.monotonic() - started < 8
    gate.release.set()
    leader.join(10)


def test_a_follower_of_a_failed_fetch_gets_its_error(clock: FrozenClock) -> None:
    gate = Gate(requests.ConnectionError("down"))
    http = FakeHttp({DISCOVERY_URL: gate})
    client = make_client(http, clock)
    leader, led = in_thread(client.metadata)
    assert gate.entered.wait(10)
    follower, followed = in_thread(client.metadata)
    wait_until_waiting_for_a_fetch(follower)

    gate.release.set()
    leader.join(10)
    follower.join(10)

    assert isinstance(led["error"], OAuthProviderUnavailableError)
    assert type(followed["error"]) is OAuthProviderUnavailableError
    assert followed["error"] is not led["error"]  # its own, without the leader's frames
    assert followed["error"].__cause__ is None
    assert http.calls[DISCOVERY_URL] == 1


def test_a_follower_that_gives_up_does_not_get_an_older_fetchs_error(clock: FrozenClock) -> None:
    http = FakeHttp({DISCOVERY_URL: discovery(issuer="https://evil.example")})
    client = make_client(http, clock, timeout_seconds=0.1)
    with pytest.raises(OAuthProviderResponseError, match="another issuer"):
        client.metadata()
    clock.advance(6)  # past the backoff: the next login fetches again, and that fetch hangs
    gate = Gate(discovery())
    http.routes[DISCOVERY_URL] = gate
    leader, led = in_thread(client.metadata)
    assert gate.entered.wait(10)

    with pytest.raises(OAuthProviderUnavailableError) as raised:
        client.metadata()

    assert type(raised.value) is OAuthProviderUnavailableError
    gate.release.set()
    leader.join(10)
    assert led["value"].issuer == ISSUER


def test_a_follower_of_the_jwks_waits_for_both_calls_of_its_fetch(clock: FrozenClock) -> None:
    """Fetching the JWKS may first fetch the discovery document: two calls, each of which may
    take its connect and read timeouts."""
    key = rsa_key()
    entered = threading.Event()

    def slow(body: object) -> Callable[[], object]:
        def answer() -> object:
            entered.set()
            time.sleep(0.7)  # within one call's timeouts (0.5 s to connect, 0.5 s to read)
            return body

        return answer

    http = FakeHttp({DISCOVERY_URL: slow(discovery()), JWKS_URL: slow(jwks(("k1", key)))})
    client = make_client(http, clock, timeout_seconds=0.5)
    leader, led = in_thread(lambda: client._signing_keys(refresh=False))
    assert entered.wait(10)

    keys = client._signing_keys(refresh=False)  # waits: there is no copy yet

    assert list(keys) == ["k1"]
    leader.join(10)
    assert led["value"] is keys
    assert http.calls == {DISCOVERY_URL: 1, JWKS_URL: 1}


# JWKS: refreshed on an unknown kid, at most every 30 s ------------------------------------


def verify(client: OpenIDConnectClient, token: str) -> Any:
    return client._verify(token, client.metadata(), FLOW)


def test_an_unknown_kid_fetches_the_jwks_again_and_verifies(clock: FrozenClock) -> None:
    old, new = rsa_key(), rsa_key()
    http = FakeHttp({DISCOVERY_URL: discovery(), JWKS_URL: jwks(("k1", old))})
    client = make_client(http, clock)
    assert verify(client, id_token(old, "k1", clock)).subject == "user-1"
    http.routes[JWKS_URL] = jwks(("k2", new), ("k1", old))  # the provider rotated

    assert verify(client, id_token(new, "k2", clock)).subject == "user-1"
    assert http.calls[JWKS_URL] == 2


def test_unknown_kids_refetch_the_jwks_at_most_every_30_seconds(clock: FrozenClock) -> None:
    key = rsa_key()
    http = FakeHttp({DISCOVERY_URL: discovery(), JWKS_URL: jwks(("k1", key))})
    client = make_client(http, clock)
    forged = rsa_key()
    verify(client, id_token(key, "k1", clock))
    assert http.calls[JWKS_URL] == 1

    for kid in ("x1", "x2", "x3"):
        with pytest.raises(OAuthInvalidIdTokenError, match="does not list"):
            verify(client, id_token(forged, kid, clock))
        clock.advance(10)
    assert http.calls[JWKS_URL] == 2  # the first unknown kid; then at most every 30 s

    clock.advance(1)  # 31 s after that refetch
    with pytest.raises(OAuthInvalidIdTokenError):
        verify(client, id_token(forged, "x4", clock))
    assert http.calls[JWKS_URL] == 3


def test_an_unknown_kid_arriving_during_the_hourly_refetch_fetches_after_it(
    clock: FrozenClock,
) -> None:
    """The hourly refetch started before the provider rotated its keys: a token signed with the
    new key waits for it, then fetches again (that older fetch is no forced refresh)."""
    old, new = rsa_key(), rsa_key()
    http = FakeHttp({DISCOVERY_URL: discovery(), JWKS_URL: jwks(("k1", old))})
    client = make_client(http, clock)
    verify(client, id_token(old, "k1", clock))
    clock.advance(3601)
    gate = Gate(jwks(("k1", old)))  # what the provider sent before it rotated
    http.routes[JWKS_URL] = gate
    hourly, refetched = in_thread(lambda: client._signing_keys(refresh=False))
    assert gate.entered.wait(10)
    http.routes[JWKS_URL] = jwks(("k2", new), ("k1", old))  # the provider rotates
    login, logged = in_thread(lambda: verify(client, id_token(new, "k2", clock)))
    wait_until_waiting_for_a_fetch(login)

    gate.release.set()
    hourly.join(10)
    login.join(10)

    assert list(refetched["value"]) == ["k1"]
    assert "error" not in logged, logged
    assert logged["value"].subject == "user-1"
    assert http.calls[JWKS_URL] == 3
    clock.advance(1)
    assert verify(client, id_token(new, "k2", clock)).subject == "user-1"
    assert http.calls[JWKS_URL] == 3


# Google's two spellings of its issuer -----------------------------------------------------

GOOGLE = "https://accounts.google.com"


@pytest.mark.parametrize("iss", [GOOGLE, "accounts.google.com"])
def test_the_google_preset_accepts_both_spellings_of_its_issuer(
    clock: FrozenClock, iss: str
) -> None:
    key = rsa_key()
    jwks_url = "https://www.googleapis.com/oauth2/v3/certs"
    http = FakeHttp(
        {
            GOOGLE + "/.well-known/openid-configuration": discovery(GOOGLE, jwks_uri=jwks_url),
            jwks_url: jwks(("g1", key)),
        }
    )
    client = make_client(http, clock, kind="google", issuer=GOOGLE)

    assert verify(client, id_token(key, "g1", clock, iss=iss)).subject == "user-1"


def test_a_generic_provider_accepts_only_its_exact_issuer(clock: FrozenClock) -> None:
    key = rsa_key()
    http = FakeHttp({DISCOVERY_URL: discovery(), JWKS_URL: jwks(("k1", key))})
    client = make_client(http, clock)

    with pytest.raises(OAuthInvalidIdTokenError, match="another issuer"):
        verify(client, id_token(key, "k1", clock, iss="idp.example"))


def test_google_short_issuer_is_not_accepted_for_an_oidc_provider_at_google(
    clock: FrozenClock,
) -> None:
    """Only the google preset has two issuers: a generic provider configured with Google's
    issuer compares exactly."""
    key = rsa_key()
    jwks_url = "https://www.googleapis.com/oauth2/v3/certs"
    http = FakeHttp(
        {
            GOOGLE + "/.well-known/openid-configuration": discovery(GOOGLE, jwks_uri=jwks_url),
            jwks_url: jwks(("g1", key)),
        }
    )
    client = make_client(http, clock, kind="oidc", issuer=GOOGLE)

    with pytest.raises(OAuthInvalidIdTokenError, match="another issuer"):
        verify(client, id_token(key, "g1", clock, iss="accounts.google.com"))


# The issuer of authorization responses (RFC 9207) -------------------------------------------


@pytest.mark.parametrize("advertised", [True, False, None])
def test_an_oidc_provider_names_its_issuer_and_requires_it_when_it_advertises_it(
    clock: FrozenClock, advertised: bool | None
) -> None:
    document = discovery()
    if advertised is not None:
        document["authorization_response_iss_parameter_supported"] = advertised
    client = make_client(FakeHttp({DISCOVERY_URL: document}), clock)

    assert client.response_issuer() == ResponseIssuer(ISSUER, required=advertised is True)


def test_the_google_preset_expects_iss_spelled_as_in_its_discovery_document(
    clock: FrozenClock,
) -> None:
    """Its ID tokens may use two spellings; an authorization response's iss is compared with
    the issuer of the metadata, exactly (RFC 9207 §2.4)."""
    http = FakeHttp({GOOGLE + "/.well-known/openid-configuration": discovery(GOOGLE)})
    client = make_client(http, clock, kind="google", issuer=GOOGLE)

    assert client.response_issuer() == ResponseIssuer(GOOGLE, required=False)


def test_github_has_no_issuer_to_compare_an_iss_with() -> None:
    settings = OAuthProviderSettings(
        kind="github",
        client_id="client-1",
        client_secret="secret",  # type: ignore[arg-type]
    )
    client = GitHubClient(ProviderInfo("github", "GitHub"), settings, timeout_seconds=1)

    assert client.response_issuer() == ResponseIssuer(None, required=False)
