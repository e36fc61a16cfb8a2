"""Provider clients for "Log in with ...": the HTTP side of OAuth 2.0 / OpenID Connect.

Authlib's client builds the authorization request (state, nonce, PKCE S256) and performs the
code exchange with client authentication; these classes add what a relying party must check,
cache discovery documents and keys, put a timeout on every call, and translate every failure
into an ``OAuthError`` with a stable code. They decide nothing about accounts: the service does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urljoin

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import OAuthError as AuthlibOAuthError
from authlib.integrations.requests_client import OAuth2Session

from authgate.config import GOOGLE_ISSUER, OAuthProviderSettings
from authgate.core.clocks import Clock
from authgate.core.oauth import (
    ExternalProfile,
    FlowSecrets,
    ProviderKey,
    ProviderMetadata,
    ResponseIssuer,
    UnknownIdTokenKeyError,
    parse_discovery_document,
    parse_jwks,
    verify_id_token,
)
from authgate.errors import (
    OAuthError,
    OAuthProviderResponseError,
    OAuthProviderUnavailableError,
)

log = logging.getLogger("authgate.oauth")

# A call to a provider gets ``oauth_http_timeout_seconds`` as its connect timeout (at most 5 s)
# and as its read timeout, which bounds each wait for data (requests' timeouts), not the whole
# call. A hung provider must not hold a worker.
_MAX_CONNECT_SECONDS = 5.0
_MAX_RESPONSE_BYTES = 1024 * 1024
_METADATA_TTL_SECONDS = 3600.0
# A token naming an unknown key makes us fetch the JWKS again, but not more often than this.
_JWKS_MIN_REFRESH_SECONDS = 30.0
# After a failed fetch of a discovery document or JWKS, logins use the copy in hand (or fail at
# once, without one) for this long instead of each waiting for a provider that is down.
_FAILED_FETCH_BACKOFF_SECONDS = 5.0
# Recognised by Google as its issuer: the preset accepts both spellings (Google documents both).
GOOGLE_ISSUERS = (GOOGLE_ISSUER, GOOGLE_ISSUER.removeprefix("https://"))

HttpGet = Callable[..., requests.Response]
"""``requests.get``, or a test's stand-in: called as ``get(url, headers=, timeout=,
allow_redirects=False)``."""

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    display_name: str


class ProviderClient(Protocol):
    info: ProviderInfo

    def authorization_url(self, *, redirect_uri: str, flow: FlowSecrets) -> str:
        """Where to send the browser to log in."""
        ...

    def response_issuer(self) -> ResponseIssuer:
        """What the ``iss`` of its authorization responses must be (RFC 9207)."""
        ...

    def fetch_profile(self, *, code: str, redirect_uri: str, flow: FlowSecrets) -> ExternalProfile:
        """Exchange the code (with the PKCE verifier) and say who logged in, checked."""
        ...


def build_provider_clients(
    providers: Mapping[str, OAuthProviderSettings],
    clock: Clock,
    *,
    timeout_seconds: float,
) -> dict[str, ProviderClient]:
    clients: dict[str, ProviderClient] = {}
    for name, settings in providers.items():
        info = ProviderInfo(name, settings.label(name))
        if settings.kind == "github":
            clients[name] = GitHubClient(info, settings, timeout_seconds=timeout_seconds)
        else:
            clients[name] = OpenIDConnectClient(
                info, settings, clock, timeout_seconds=timeout_seconds
            )
    return clients


def _raise_for_unavailable(response: requests.Response) -> requests.Response:
    """A token endpoint that is overloaded (5xx, 429) is unavailable, whatever its body says."""
    if response.status_code >= 500 or response.status_code == 429:
        response.raise_for_status()
    return response


class _HttpClient:
    """What both kinds share: an Authlib session per flow, JSON calls with limits."""

    def __init__(
        self,
        info: ProviderInfo,
        settings: OAuthProviderSettings,
        *,
        timeout_seconds: float,
        http_get: HttpGet | None = None,
    ):
        self.info = info
        self.settings = settings
        self.timeout = (min(_MAX_CONNECT_SECONDS, timeout_seconds), timeout_seconds)
        self._http_get: HttpGet = http_get or requests.get

    def _session(self, redirect_uri: str) -> OAuth2Session:
        session = OAuth2Session(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret.get_secret_value(),
            token_endpoint_auth_method=self._token_auth_method(),
            scope=" ".join(self.settings.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            default_timeout=self.timeout,
        )
        session.register_compliance_hook("access_token_response", _raise_for_unavailable)
        return session

    def _token_auth_method(self) -> str:
        return "client_secret_basic"

    def _exchange_code(
        self, session: OAuth2Session, token_url: str, *, code: str, flow: FlowSecrets
    ) -> dict[str, Any]:
        try:
            token = session.fetch_token(
                token_url, code=code, code_verifier=flow.code_verifier, state=flow.state
            )
        except AuthlibOAuthError as e:
            log.warning("%s refused the code: %s", self.info.name, e.error)
            raise OAuthError(
                "The provider refused the login code (it may have been used already); start again."
            ) from e
        except requests.HTTPError as e:
            raise _http_error(self.info.name, e) from e
        except requests.RequestException as e:
            log.warning("%s token endpoint unreachable: %s", self.info.name, type(e).__name__)
            raise OAuthProviderUnavailableError() from e
        except (ValueError, AuthlibBaseError) as e:
            raise OAuthProviderResponseError("The provider's token response is unusable.") from e
        if not isinstance(token.get("access_token"), str):
            raise OAuthProviderResponseError("The provider's token response has no access token.")
        return dict(token)

    def _get_json(
        self, url: str, *, token: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET JSON, with the access token as a plain Bearer header: it was issued a moment
        ago, whatever lifetime the provider gave it."""
        request_headers = dict(headers or {})
        if token is not None:
            request_headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http_get(
                url, headers=request_headers, timeout=self.timeout, allow_redirects=False
            )
            response.raise_for_status()
        except requests.HTTPError as e:
            raise _http_error(self.info.name, e) from e
        except requests.RequestException as e:
            log.warning("%s unreachable at %s: %s", self.info.name, url, type(e).__name__)
            raise OAuthProviderUnavailableError() from e
        if len(response.content) > _MAX_RESPONSE_BYTES:
            raise OAuthProviderResponseError("The provider's response is too large.")
        try:
            return response.json()
        except ValueError as e:
            raise OAuthProviderResponseError("The provider's response is not JSON.") from e


def _http_error(name: str, error: requests.HTTPError) -> OAuthError:
    status = error.response.status_code if error.response is not None else 0
    log.warning("%s answered HTTP %s at %s", name, status, error.request and error.request.url)
    if status >= 500 or status == 429:
        return OAuthProviderUnavailableError()
    return OAuthProviderResponseError()


def _fresh(error: OAuthError) -> OAuthError:
    """A new error like ``error`` (its class, code and message), without its traceback: one
    exception object raised by many logins, in many threads, would collect all their frames."""
    return type(error)(error.message, details=error.details)


class _Flight(Generic[_T]):
    """One fetch: its number (fetches are numbered in the order they start) and its outcome,
    set before ``done`` is."""

    def __init__(self, number: int):
        self.number = number
        self.done = threading.Event()
        self.value: _T | None = None
        self.failure: OAuthError | None = None


class _SingleFlight(Generic[_T]):
    """A document fetched from a provider and kept for ``ttl`` seconds.

    No lock is held while fetching: one fetch is in flight at a time, and the logins that need
    the document meanwhile use the copy in hand, or (without one, or when ``refresh`` asks for
    a newer one) wait for that fetch, at most ``wait_seconds`` (what the fetch's calls may take
    by their timeouts). A failed fetch is not repeated for ``_FAILED_FETCH_BACKOFF_SECONDS``:
    the copy in hand is used, or the failure raised again (a new exception each time) at once.

    A forced ``refresh`` is answered by a fetch that started after it was asked for (one in
    flight before it may predate what the caller needs, say a rotated key), and is made at
    most every ``min_refresh`` seconds: within that, it is answered by the last forced one."""

    def __init__(
        self,
        fetch: Callable[[], _T],
        *,
        name: str,
        clock: Clock,
        ttl: float,
        wait_seconds: float,
        min_refresh: float = 0.0,
    ):
        self._fetch = fetch
        self._name = name
        self._clock = clock
        self._ttl = ttl
        self._wait_seconds = wait_seconds
        self._min_refresh = min_refresh
        self._lock = threading.Lock()
        self._value: _T | None = None
        self._fetched_at = 0.0
        self._fetched_by = 0  # the number of the fetch that gave the value
        self._started = 0  # fetches started so far
        self._refreshed_at: float | None = None  # when the last forced refresh started
        self._refreshed_by = 0  # and its number
        self._failed_at: float | None = None
        self._failure: OAuthError | None = None  # the last failure, without its traceback
        self._in_flight: _Flight[_T] | None = None

    def get(self, *, refresh: bool = False) -> _T:
        if refresh:
            return self._refresh()
        with self._lock:
            now = self._clock.timestamp()
            value = self._value
            if value is not None and now - self._fetched_at < self._ttl:
                return value
            if self._in_backoff(now):
                return self._value_or_failure()
            flight = self._in_flight
            if flight is not None:
                if value is not None:
                    return value  # a stale copy now beats waiting for the fetch
                leading = None
            else:
                leading = flight = self._start()
        if leading is not None:
            return self._lead(leading, value)
        return self._follow(flight)

    def _refresh(self) -> _T:
        with self._lock:
            now = self._clock.timestamp()
            if self._refreshed_at is not None and now - self._refreshed_at < self._min_refresh:
                wanted = self._refreshed_by  # refreshed a moment ago: that fetch is the newest
            else:
                wanted = self._started + 1  # a fetch that starts from now on
            older = self._in_flight
        # A fetch in flight now started before this refresh was asked for: it may predate what
        # the caller needs (a key the provider has just rotated in). Let it end, then fetch again.
        if older is not None and older.number < wanted and not older.done.wait(self._wait_seconds):
            with self._lock:
                return self._value_or_unavailable()
        with self._lock:
            now = self._clock.timestamp()
            if self._fetched_by >= wanted and self._value is not None:
                return self._value
            flight = self._in_flight  # if any: ``wanted`` or a later one
            leading = None
            if flight is None and wanted > self._started:
                if self._in_backoff(now):
                    return self._value_or_failure()
                leading = self._start()
                self._refreshed_at, self._refreshed_by = now, leading.number
            stale = self._value
        if leading is not None:
            return self._lead(leading, stale)
        if flight is not None:
            return self._follow(flight)
        return self.get()  # the forced refresh this one would use failed: as without one

    def _in_backoff(self, now: float) -> bool:
        return self._failed_at is not None and now - self._failed_at < (
            _FAILED_FETCH_BACKOFF_SECONDS
        )

    def _value_or_failure(self) -> _T:
        if self._value is not None:
            return self._value
        raise _fresh(self._failure or OAuthProviderUnavailableError()) from None

    def _value_or_unavailable(self) -> _T:
        if self._value is not None:
            return self._value
        raise OAuthProviderUnavailableError()

    def _follow(self, flight: _Flight[_T]) -> _T:
        """Wait for ``flight`` (not holding the lock); its value, else the copy in hand, else
        its error — or, when it is not over in time, ``OAuthProviderUnavailableError``."""
        flight.done.wait(self._wait_seconds)
        with self._lock:
            if flight.value is not None:
                return flight.value
            if self._value is not None:
                return self._value
            failure = flight.failure if flight.done.is_set() else None
        if failure is not None:
            raise _fresh(failure) from None
        raise OAuthProviderUnavailableError()

    def _start(self) -> _Flight[_T]:
        self._started += 1
        self._in_flight = _Flight(self._started)
        return self._in_flight

    def _lead(self, flight: _Flight[_T], stale: _T | None) -> _T:
        try:
            fetched = self._fetch()
        except OAuthError as e:
            with self._lock:
                self._failed_at = self._clock.timestamp()
                self._failure = flight.failure = _fresh(e)
                self._finish(flight)
            if stale is None:
                raise
            log.warning("%s: kept the cached copy after a failed fetch (%s)", self._name, e.code)
            return stale
        except BaseException:
            with self._lock:
                self._finish(flight)
            raise
        with self._lock:
            self._value = flight.value = fetched
            self._fetched_at = self._clock.timestamp()
            self._fetched_by = flight.number
            self._failed_at = self._failure = None
            self._finish(flight)
        return fetched

    def _finish(self, flight: _Flight[_T]) -> None:
        flight.done.set()
        self._in_flight = None


class OpenIDConnectClient(_HttpClient):
    """Any OpenID Provider known by its issuer (Google is one with a preset issuer)."""

    def __init__(
        self,
        info: ProviderInfo,
        settings: OAuthProviderSettings,
        clock: Clock,
        *,
        timeout_seconds: float,
        http_get: HttpGet | None = None,
    ):
        super().__init__(info, settings, timeout_seconds=timeout_seconds, http_get=http_get)
        self.issuer = settings.issuer or ""
        self._clock = clock
        # The ID token's iss may take either spelling for Google (and only for Google).
        self._accepted_issuers: tuple[str, ...] = (
            GOOGLE_ISSUERS
            if settings.kind == "google" and self.issuer == GOOGLE_ISSUER
            else (self.issuer,)
        )
        # What one call may take by its timeouts; followers wait as long as their fetch's calls
        # may take: the JWKS fetch may first fetch (or wait for) the discovery document.
        call_seconds = sum(self.timeout)
        self._metadata = _SingleFlight(
            self._fetch_metadata,
            name=info.name,
            clock=clock,
            ttl=_METADATA_TTL_SECONDS,
            wait_seconds=call_seconds,
        )
        self._keys = _SingleFlight(
            self._fetch_keys,
            name=info.name,
            clock=clock,
            ttl=_METADATA_TTL_SECONDS,
            wait_seconds=2 * call_seconds,
            min_refresh=_JWKS_MIN_REFRESH_SECONDS,
        )

    def metadata(self) -> ProviderMetadata:
        """The discovery document, fetched once an hour; a stale copy outlives an outage."""
        return self._metadata.get()

    def _fetch_metadata(self) -> ProviderMetadata:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        return parse_discovery_document(
            self._get_json(url), expected_issuer=self.issuer, allow_http=self.settings.allow_http
        )

    def _fetch_keys(self) -> dict[str, ProviderKey]:
        return parse_jwks(self._get_json(self.metadata().jwks_uri))

    def _signing_keys(self, *, refresh: bool) -> dict[str, ProviderKey]:
        return self._keys.get(refresh=refresh)

    def _token_auth_method(self) -> str:
        methods = self.metadata().token_auth_methods
        if "client_secret_basic" in methods or not methods:
            return "client_secret_basic"
        return "client_secret_post"

    def response_issuer(self) -> ResponseIssuer:
        """Its issuer, exactly as in its discovery document (only Google's ID tokens may use
        another spelling); required when the document advertises
        ``authorization_response_iss_parameter_supported``."""
        metadata = self.metadata()
        return ResponseIssuer(metadata.issuer, required=metadata.iss_parameter_supported)

    def authorization_url(self, *, redirect_uri: str, flow: FlowSecrets) -> str:
        metadata = self.metadata()
        url, _ = self._session(redirect_uri).create_authorization_url(
            metadata.authorization_endpoint,
            state=flow.state,
            code_verifier=flow.code_verifier,
            nonce=flow.nonce,
        )
        return str(url)

    def fetch_profile(self, *, code: str, redirect_uri: str, flow: FlowSecrets) -> ExternalProfile:
        metadata = self.metadata()
        session = self._session(redirect_uri)
        token = self._exchange_code(session, metadata.token_endpoint, code=code, flow=flow)
        claims = dict(self._verify(token.get("id_token"), metadata, flow).claims)
        if metadata.userinfo_endpoint:
            userinfo = self._get_json(metadata.userinfo_endpoint, token=token["access_token"])
            if not isinstance(userinfo, dict) or userinfo.get("sub") != claims["sub"]:
                # OpenID Connect Core §5.3.2: a mismatched sub must not be used at all.
                raise OAuthProviderResponseError(
                    "The provider's userinfo is about another user than its ID token."
                )
            claims = {**userinfo, **claims}
        return _profile_from_claims(claims)

    def _verify(self, id_token: object, metadata: ProviderMetadata, flow: FlowSecrets) -> Any:
        def verify(keys: dict[str, ProviderKey]) -> Any:
            return verify_id_token(
                id_token,
                keys=keys,
                algorithms=metadata.id_token_algorithms,
                issuer=self._accepted_issuers,
                client_id=self.settings.client_id,
                nonce=flow.nonce,
                now=self._clock.timestamp(),
            )

        try:
            return verify(self._signing_keys(refresh=False))
        except UnknownIdTokenKeyError:
            # The provider may have rotated its keys since we fetched them.
            return verify(self._signing_keys(refresh=True))


def _profile_from_claims(claims: Mapping[str, Any]) -> ExternalProfile:
    email = claims.get("email")
    verified = claims.get("email_verified")
    return ExternalProfile(
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) and email else None,
        # Some providers send the string "true"; anything else is "not verified".
        email_verified=verified is True or verified == "true",
        name=_text(claims.get("name")),
        avatar_url=_https_url(claims.get("picture")),
    )


class GitHubClient(_HttpClient):
    """GitHub (or GitHub Enterprise Server): OAuth 2.0 without OpenID Connect, so the user comes
    from ``/user`` and the email from ``/user/emails`` (the primary one, if verified)."""

    _API_HEADERS = {  # noqa: RUF012 - read only
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }

    def _token_auth_method(self) -> str:
        return "client_secret_post"  # what GitHub documents

    def response_issuer(self) -> ResponseIssuer:
        """GitHub publishes no issuer identifier (no metadata, no OpenID Connect): an ``iss`` in
        its answer cannot be checked, and is ignored. Its own callback path keeps another
        provider's answer out of a GitHub login (RFC 9700 §4.4.2)."""
        return ResponseIssuer(None)

    def authorization_url(self, *, redirect_uri: str, flow: FlowSecrets) -> str:
        url, _ = self._session(redirect_uri).create_authorization_url(
            self.settings.authorization_url, state=flow.state, code_verifier=flow.code_verifier
        )
        return str(url)

    def fetch_profile(self, *, code: str, redirect_uri: str, flow: FlowSecrets) -> ExternalProfile:
        session = self._session(redirect_uri)
        token = self._exchange_code(session, self.settings.token_url, code=code, flow=flow)
        access_token = token["access_token"]
        api = self.settings.api_url.rstrip("/") + "/"
        user = self._get_json(urljoin(api, "user"), token=access_token, headers=self._API_HEADERS)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise OAuthProviderResponseError("GitHub's /user response has no user id.")
        emails = self._get_json(
            urljoin(api, "user/emails"), token=access_token, headers=self._API_HEADERS
        )
        email, verified = _github_email(emails)
        return ExternalProfile(
            subject=str(user["id"]),  # the numeric id: a login name can be renamed and reused
            email=email,
            email_verified=verified,
            name=_text(user.get("name")) or _text(user.get("login")),
            avatar_url=_https_url(user.get("avatar_url")),
        )


def _github_email(emails: object) -> tuple[str | None, bool]:
    """The primary email and whether GitHub has verified it."""
    if not isinstance(emails, list):
        raise OAuthProviderResponseError("GitHub's /user/emails response is not a list.")
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") is True:
            email = entry.get("email")
            if isinstance(email, str) and email:
                return email, entry.get("verified") is True
    return None, False


def _text(value: object, limit: int = 200) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()
    return cleaned[:limit] or None


def _https_url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith("https://") and len(value) <= 2048:
        return value if value.isprintable() and " " not in value else None
    return None
