"""The standalone server: ``create_app()`` is what ``authgate serve`` (gunicorn) runs."""

from __future__ import annotations

from flask import Flask

from authgate.config import Settings, load_settings
from authgate.integrations.flask.errors import register_error_pages
from authgate.integrations.flask.extension import AuthGate
from authgate.integrations.flask.web_views import pages_blueprint
from authgate.log_format import configure_logging


def create_app(settings: Settings | None = None) -> Flask:
    """A Flask app that is only authgate, configured from the environment when not given."""
    settings = settings or load_settings()
    configure_logging(settings.log_format)
    app = Flask("authgate", instance_path=str(settings.instance_path.resolve()))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    AuthGate(app, settings=settings)
    app.register_blueprint(pages_blueprint)
    register_error_pages(app)  # every path is authgate's: no bare Werkzeug HTML errors
    return app
