"""Prometheus metrics at ``GET /metrics`` (docs/operations.md), when ``AUTHGATE_METRICS`` is not
``off``.

``AuthGate`` imports this module -- and with it ``prometheus_client`` -- only then: with metrics
off, no hook, middleware or import costs a request or a worker's memory anything.

Every series is derived outside the service: the request series from each response at the WSGI
level (``MetricsMiddleware``: the URL rule that matched, not the raw path, so the labels stay a
bounded set), the login, refresh and OAuth outcomes from their routes' answers, revocations from
what the revocation feed announces and mails from what the outbox sender delivered.

Under several gunicorn workers the figures are summed across them: ``authgate serve --production``
gives each instance a ``PROMETHEUS_MULTIPROC_DIR`` (``production_server``), where every worker
writes its values and from which a scrape, served by any worker, reads them all.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    exposition,
    multiprocess,
)

from authgate.errors import (
    AuthenticationRequiredError,
    AuthError,
    ForbiddenError,
    InvalidTokenError,
)
from authgate.integrations.flask.context import AuthGateState
from authgate.integrations.flask.errors import ERROR_CODE_KEY, HTTP_ERROR_CODES
from authgate.store.records import RevocationKind

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Request latency buckets (seconds): a bearer request answers in well under 5 ms, a password
# login takes the hash's ~50-100 ms, a slow database shows above that.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNMATCHED_ROUTE = "unmatched"  # no URL rule matched (a 404, a 405 outside any route)
# The views whose answers are counted by outcome (besides the OAuth callback).
_LOGIN_ENDPOINT = "authgate_auth.login"
_REFRESH_ENDPOINT = "authgate_auth.refresh"
_MFA_VERIFY_ENDPOINT = "authgate_mfa.verify"
_PASSKEY_LOGIN_ENDPOINT = "authgate_passkeys.login"
_OAUTH_CALLBACK_ENDPOINT = "authgate_oauth.callback"
# An outcome named after the error code, except these.
_OUTCOME_NAMES = {"rate_limited": "throttled"}
_LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
# A request with one of these came through a proxy: never "from this host" whatever its address.
_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _known_error_codes() -> frozenset[str]:
    """Every code an error answer may carry: the label values an outcome may take."""
    codes = {"internal_error", "http_error", *HTTP_ERROR_CODES.values()}
    pending: list[type[AuthError]] = [AuthError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return frozenset(codes)


class AuthgateMetrics:
    """The series (docs/operations.md lists them) and how each is fed."""

    def __init__(self, registry: CollectorRegistry, oauth_providers: Iterable[str] = ()) -> None:
        self.registry = registry
        self.request_duration = Histogram(
            "authgate_http_request_duration_seconds",
            "Time to answer an HTTP request (until its status and headers), by URL rule.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.logins = Counter(
            "authgate_logins",
            "Password logins (POST /api/auth/login) by outcome: success or the error code.",
            ["outcome"],
            registry=registry,
        )
        self.refreshes = Counter(
            "authgate_refreshes",
            "Token refreshes (POST /api/auth/refresh) by outcome: success or the error code.",
            ["outcome"],
            registry=registry,
        )
        self.mfa_verifications = Counter(
            "authgate_mfa_verifications",
            "Second-factor steps of a login (POST /api/auth/mfa/verify) by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.passkey_logins = Counter(
            "authgate_passkey_logins",
            "Passkey logins (POST /api/auth/passkeys/login) by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.oauth_logins = Counter(
            "authgate_oauth_logins",
            "OAuth callbacks (GET /api/oauth/<provider>/callback) by provider and outcome.",
            ["provider", "outcome"],
            registry=registry,
        )
        self.throttled = Counter(
            "authgate_throttled_requests",
            "Requests refused with 429 (rate limits), by URL rule.",
            ["route"],
            registry=registry,
        )
        self.revocations = Counter(
            "authgate_revocations",
            "Revocations made by this deployment (sessions, users, tokens), by kind.",
            ["kind"],
            registry=registry,
        )
        self.mails = Counter(
            "authgate_mail_deliveries",
            "Mail delivery attempts by kind and outcome (sent, failed: retried later, given_up).",
            ["kind", "outcome"],
            registry=registry,
        )
        self._by_outcome = {
            _LOGIN_ENDPOINT: self.logins,
            _REFRESH_ENDPOINT: self.refreshes,
            _MFA_VERIFY_ENDPOINT: self.mfa_verifications,
            _PASSKEY_LOGIN_ENDPOINT: self.passkey_logins,
        }
        self._codes = _known_error_codes()
        self._providers = frozenset(oauth_providers)
        # One child per label set, found without prometheus_client's lock and label checks.
        self._durations: dict[tuple[str, str, str], Any] = {}

    # Requests ----------------------------------------------------------------------------------

    def observe(
        self, environ: Environ, status: str, headers: list[tuple[str, str]], seconds: float
    ) -> None:
        code = int(status[:3])
        rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
        route = _UNMATCHED_ROUTE if rule is None else rule.rule
        method = environ.get("REQUEST_METHOD", "")
        key = (route, method if method in _METHODS else "other", f"{code // 100}xx")
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self.request_duration.labels(*key)
        child.observe(seconds)
        if code == 429:
            self.throttled.labels(route).inc()
        if rule is None:
            return
        endpoint = rule.endpoint
        counter = self._by_outcome.get(endpoint)
        if counter is not None:
            counter.labels(self._outcome(environ, code)).inc()
        elif endpoint == _OAUTH_CALLBACK_ENDPOINT:
            provider = (environ.get("werkzeug.request").view_args or {}).get("provider")  # type: ignore[union-attr]
            self.oauth_logins.labels(
                provider if provider in self._providers else "unknown",
                self._callback_outcome(headers, code),
            ).inc()

    def _outcome(self, environ: Environ, code: int) -> str:
        if code < 400:
            return "success"
        return self._named(environ.get(ERROR_CODE_KEY), code)

    def _named(self, error_code: object, status: int) -> str:
        if isinstance(error_code, str) and error_code in self._codes:
            return _OUTCOME_NAMES.get(error_code, error_code)
        return f"http_{status}"

    def _callback_outcome(self, headers: list[tuple[str, str]], code: int) -> str:
        """The callback redirects the browser back; an error is named in the ``error``
        parameter of where it goes (a code, or ``other``: ``next`` is the page's own choice)."""
        if code >= 400:
            return f"http_{code}"
        for name, value in headers:
            if name.lower() == "location":
                errors = parse_qs(urlsplit(value).query).get("error")
                if not errors:
                    return "success"
                error = errors[-1]  # ours is appended last
                return _OUTCOME_NAMES.get(error, error) if error in self._codes else "other"
        return "success"

    # Backends ----------------------------------------------------------------------------------

    def revoked(self, kind: RevocationKind) -> None:
        self.revocations.labels(kind.value).inc()

    def mail_delivered(self, kind: str, outcome: str) -> None:
        self.mails.labels(kind, outcome).inc()

    # The scrape --------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The text a scrape reads: every worker's values, summed, under several workers."""
        directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            return exposition.generate_latest(registry)
        return exposition.generate_latest(self.registry)


class MetricsMiddleware:
    """``app.wsgi_app = MetricsMiddleware(app.wsgi_app, metrics)``: times every response."""

    def __init__(self, wsgi_app: WsgiApp, metrics: AuthgateMetrics) -> None:
        self.wsgi_app = wsgi_app
        self.metrics = metrics

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        observe = self.metrics.observe

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            observe(environ, status, headers, time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


# Who may scrape ----------------------------------------------------------------------------------


def _direct_client_address(environ: Environ) -> str | None:
    """The peer of the connection itself (before ``ProxyFix`` rewrote it)."""
    original = environ.get("werkzeug.proxy_fix.orig")
    source = original if isinstance(original, dict) and "REMOTE_ADDR" in original else environ
    address = source.get("REMOTE_ADDR")
    return address if isinstance(address, str) else None


def is_loopback_scrape(environ: Environ) -> bool:
    """From this host, straight: a loopback peer and no sign of a proxy in between (a proxy on
    this host would otherwise make every client of the site look local)."""
    if any(environ.get(header) for header in _FORWARDING_HEADERS):
        return False
    return _direct_client_address(environ) in _LOOPBACK_ADDRESSES


def bearer_token_matches(header: str | None, token: bytes) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time (digests: the length of the
    token does not show either)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise AuthenticationRequiredError("Send the metrics token: Authorization: Bearer <token>.")
    expected = hashlib.sha256(token).digest()
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(), expected)


def _check_scraper(state: AuthGateState) -> None:
    settings = state.settings
    token = settings.metrics_token
    if token is None:
        if not is_loopback_scrape(request.environ):
            raise ForbiddenError(
                "Metrics are served only to this host (AUTHGATE_METRICS=loopback)."
            )
        return
    if not bearer_token_matches(request.headers.get("Authorization"), token):
        raise InvalidTokenError("The metrics token is not valid.")


# Installation ------------------------------------------------------------------------------------

_STATE_KEY = "authgate.metrics"


def install_metrics(app: Flask, state: AuthGateState) -> AuthgateMetrics:
    """Serve ``/metrics``, time every response and follow the backends' events."""
    metrics = AuthgateMetrics(CollectorRegistry(), state.settings.oauth_providers)
    service = state.service
    service.feed.on_announce.append(metrics.revoked)
    service.mail_sender.on_delivery.append(metrics.mail_delivered)
    app.extensions[_STATE_KEY] = metrics
    blueprint = Blueprint("authgate_metrics", __name__)

    @blueprint.get("/metrics")
    def scrape() -> Response:
        _check_scraper(state)
        response = Response(metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE_LATEST)
        response.headers["Cache-Control"] = "no-store"
        return response

    app.register_blueprint(blueprint)
    app.wsgi_app = MetricsMiddleware(app.wsgi_app, metrics)  # type: ignore[method-assign]
    return metrics
