"""``AuthGate(app)``: settings, service, routes, CORS, CSRF and JSON errors for a Flask app."""

from __future__ import annotations

import functools
import logging
import os
from typing import cast

from flask import Flask, current_app, has_app_context
from werkzeug.middleware.proxy_fix import ProxyFix

from authgate.bootstrap import build_service
from authgate.config import Settings, load_settings
from authgate.integrations.flask import (
    audit_views,
    auth_views,
    avatar_views,
    email_views,
    invitation_views,
    meta_views,
    mfa_views,
    oauth_views,
    passkey_views,
    recovery_views,
    tenant_views,
    token_views,
    user_views,
    web_views,
)
from authgate.integrations.flask.context import AUTHENTICATOR_KEY, EXTENSION_KEY, AuthGateState
from authgate.integrations.flask.cors import CorsPolicy
from authgate.integrations.flask.decorators import Authenticator
from authgate.integrations.flask.errors import register_error_handlers
from authgate.integrations.flask.legacy_sessions import finish_legacy_exchange
from authgate.integrations.flask.path_ids import PathIdConverter
from authgate.integrations.flask.readiness import READINESS_KEY, Readiness
from authgate.integrations.flask.response_headers import ResponseHeaders
from authgate.integrations.flask.transport import Transport
from authgate.service import AuthService, Principal

log = logging.getLogger("authgate")


class AuthGate:
    """The Flask extension. ``AuthGate(app)`` or ``AuthGate()`` then ``init_app(app)``.

    One ``AuthGate`` may serve several apps; each keeps its own state in ``app.extensions``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        settings: Settings | None = None,
        service: AuthService | None = None,
    ):
        self._settings = settings
        self._service = service
        self._last: AuthGateState | None = None
        if app is not None:
            self.init_app(app)

    def _settings_for(self, app: Flask) -> Settings:
        if self._service is not None:
            return self._service.settings
        if self._settings is not None:
            return self._settings
        overrides = dict(app.config)
        if "AUTHGATE_INSTANCE_PATH" not in overrides and "AUTHGATE_INSTANCE_PATH" not in os.environ:
            overrides["AUTHGATE_INSTANCE_PATH"] = app.instance_path
        return load_settings(overrides)

    def init_app(self, app: Flask) -> None:
        settings = self._settings_for(app)
        service = self._service or build_service(settings)
        # The audit events of a request carry its client and id (read only when one is built).
        service.audit.context = audit_views.request_audit_context
        state = AuthGateState(settings, service, Transport(settings))
        service.start()
        app.extensions[EXTENSION_KEY] = state
        authenticator: Authenticator[Principal] = state
        app.extensions[AUTHENTICATOR_KEY] = authenticator
        self._last = state
        if app.config.get("MAX_CONTENT_LENGTH") is None:
            app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
        register_error_handlers(app)
        if service.legacy_sessions.enabled:
            app.after_request(functools.partial(finish_legacy_exchange, state.transport))
        # authgate's routes check their ids as they match (``path_ids``); the app's keep theirs.
        converters = app.url_map.converters
        app_default, converters["default"] = converters["default"], PathIdConverter
        for module in (
            auth_views,
            email_views,
            recovery_views,
            avatar_views,
            user_views,
            tenant_views,
            invitation_views,
            token_views,
            oauth_views,
            passkey_views,
            meta_views,
            mfa_views,
            audit_views,
        ):
            app.register_blueprint(module.blueprint)
        app.register_blueprint(user_views.roles_blueprint)
        app.register_blueprint(web_views.client_blueprint)
        converters["default"] = app_default
        # The request id, Vary and CORS on every response: at the WSGI level, not a Flask hook.
        cors = CorsPolicy(settings) if settings.origins else None
        app.wsgi_app = ResponseHeaders(app.wsgi_app, cors=cors)  # type: ignore[method-assign]
        app.extensions[READINESS_KEY] = Readiness(service)
        if settings.metrics_mode != "off":
            # Only now: with metrics off, prometheus_client is never imported and no hook runs.
            from authgate.integrations.flask.metrics import install_metrics

            install_metrics(app, state)
        if settings.trusted_proxies:
            n = settings.trusted_proxies
            app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
        policy = state.transport.cookie_policy
        log.info(
            "authgate ready: public URL %s, origins %s, cookies SameSite=%s%s",
            settings.public_url,
            ", ".join(settings.origins) or "(same origin only)",
            policy.samesite,
            "; Partitioned" if policy.partitioned else "",
        )
        for name in settings.oauth_providers:
            log.info(
                "OAuth provider %s: register the redirect URI %s",
                name,
                service.oauth_logins.oauth_redirect_uri(name),
            )

    def _state(self) -> AuthGateState:
        if has_app_context() and EXTENSION_KEY in current_app.extensions:
            return cast(AuthGateState, current_app.extensions[EXTENSION_KEY])
        if self._last is None:
            raise RuntimeError("AuthGate.init_app(app) has not been called.")
        return self._last

    @property
    def settings(self) -> Settings:
        return self._state().settings

    @property
    def service(self) -> AuthService:
        return self._state().service
