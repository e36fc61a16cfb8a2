"""``AuthGate(app)``: settings, service, routes, CORS, CSRF and JSON errors for a Flask app."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, cast

from flask import Flask, Response, current_app, has_app_context
from werkzeug.middleware.proxy_fix import ProxyFix

from authgate.bootstrap import build_service
from authgate.config import Settings, load_settings
from authgate.errors import NotFoundError
from authgate.http.schemas import has_control_characters
from authgate.integrations.flask import (
    auth_views,
    avatar_views,
    meta_views,
    oauth_views,
    tenant_views,
    token_views,
    user_views,
    web_views,
)
from authgate.integrations.flask.context import AUTHENTICATOR_KEY, EXTENSION_KEY, AuthGateState
from authgate.integrations.flask.cors import make_cors
from authgate.integrations.flask.decorators import Authenticator
from authgate.integrations.flask.errors import register_error_handlers
from authgate.integrations.flask.request_ids import current_request_id
from authgate.integrations.flask.transport import Transport
from authgate.service import AuthService, Principal

log = logging.getLogger("authgate")


def _refuse_control_characters(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """authgate's path parameters (ids) never contain control characters; answer 404 rather
    than ask the database about them."""
    if values and endpoint and endpoint.startswith("authgate_") and has_control_characters(values):
        raise NotFoundError()


def _finish_response(
    apply_cors: Callable[[Response], None] | None,
) -> Callable[[Response], Response]:
    """One after-request hook for every response: the request id, then CORS."""

    def finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = current_request_id()
        if apply_cors is not None:
            apply_cors(response)
        return response

    return finish


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
        state = AuthGateState(settings, service, Transport(settings))
        service.start()
        app.extensions[EXTENSION_KEY] = state
        authenticator: Authenticator[Principal] = state
        app.extensions[AUTHENTICATOR_KEY] = authenticator
        self._last = state
        if app.config.get("MAX_CONTENT_LENGTH") is None:
            app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
        register_error_handlers(app)
        app.url_value_preprocessor(_refuse_control_characters)
        for module in (
            auth_views,
            avatar_views,
            user_views,
            tenant_views,
            token_views,
            oauth_views,
            meta_views,
        ):
            app.register_blueprint(module.blueprint)
        app.register_blueprint(web_views.client_blueprint)
        app.after_request(_finish_response(make_cors(settings) if settings.origins else None))
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
