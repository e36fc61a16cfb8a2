"""The standalone server: ``create_app()`` is what ``authgate serve`` (gunicorn) runs."""

from __future__ import annotations

import logging

from flask import Flask

from authgate.config import Settings, load_settings
from authgate.integrations.flask.errors import register_error_pages
from authgate.integrations.flask.extension import AuthGate
from authgate.integrations.flask.web_views import pages_blueprint


def create_app(settings: Settings | None = None) -> Flask:
    """A Flask app that is only authgate, configured from the environment when not given."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings or load_settings()
    app = Flask("authgate", instance_path=str(settings.instance_path.resolve()))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    AuthGate(app, settings=settings)
    app.register_blueprint(pages_blueprint)
    register_error_pages(app)  # every path is authgate's: no bare Werkzeug HTML errors
    return app
