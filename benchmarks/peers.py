"""The peers' ``/me``, each written the way its documentation shows, for ``instructions.py``.

- Flask-JWT-Extended: "Automatic User Loading" (``user_identity_loader`` /
  ``user_lookup_loader`` over Flask-SQLAlchemy, ``@jwt_required()``, ``current_user``), HS256.
- Flask-Security-Too: the quick start with Flask-SQLAlchemy (``fsqla_v3`` models,
  ``SQLAlchemyUserDatastore``), ``@auth_required("token")`` and ``current_user``, the token sent
  in ``Authentication-Token``.

Both use SQLite in the given folder. They are installed with ``pip install -e '.[bench]'``; not
authgate's dependencies.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"


def jwt_extended_app(instance: Path) -> tuple[Any, dict[str, str]]:
    """The app and the headers of an authenticated ``GET /me``."""
    from flask import Flask, jsonify
    from flask_jwt_extended import (
        JWTManager,
        create_access_token,
        current_user,
        jwt_required,
    )
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("jwt_extended")
    app.config["JWT_SECRET_KEY"] = secrets.token_hex(32)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'jwt.db'}"
    jwt = JWTManager(app)
    db = SQLAlchemy(app)

    class User(db.Model):  # type: ignore[name-defined,misc]
        id = db.Column(db.Integer, primary_key=True)
        email = db.Column(db.Text, nullable=False, unique=True)
        name = db.Column(db.Text, nullable=True)

    @jwt.user_identity_loader
    def user_identity_lookup(user: Any) -> str:
        return str(user.id)

    @jwt.user_lookup_loader
    def user_lookup_callback(_jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> Any:
        identity = jwt_data["sub"]
        return User.query.filter_by(id=int(identity)).one_or_none()

    @app.get("/me")
    @jwt_required()
    def me() -> Any:
        return jsonify(id=current_user.id, email=current_user.email, name=current_user.name)

    with app.app_context():
        db.create_all()
        user = User(email=EMAIL, name="Ada")
        db.session.add(user)
        db.session.commit()
        token = create_access_token(identity=user)
    return app, {"authorization": f"Bearer {token}"}


def security_too_app(instance: Path) -> tuple[Any, dict[str, str]]:
    """The app and the headers of an authenticated ``GET /me``."""
    from flask import Flask
    from flask_security import (
        Security,
        SQLAlchemyUserDatastore,
        auth_required,
        current_user,
        hash_password,
    )
    from flask_security.models import fsqla_v3 as fsqla
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("security_too")
    app.config["SECRET_KEY"] = secrets.token_urlsafe()
    app.config["SECURITY_PASSWORD_SALT"] = secrets.token_hex(16)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'security.db'}"
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    db = SQLAlchemy(app)
    fsqla.FsModels.set_db_info(db)

    class Role(db.Model, fsqla.FsRoleMixin):  # type: ignore[name-defined,misc]
        pass

    class User(db.Model, fsqla.FsUserMixin):  # type: ignore[name-defined,misc]
        pass

    datastore = SQLAlchemyUserDatastore(db, User, Role)
    app.security = Security(app, datastore)  # type: ignore[attr-defined]

    @app.get("/me")
    @auth_required("token")
    def me() -> dict[str, Any]:
        return {"id": current_user.fs_uniquifier, "email": current_user.email}

    with app.app_context():
        db.create_all()
        user = datastore.create_user(email=EMAIL, password=hash_password(PASSWORD))
        db.session.commit()
        token = user.get_auth_token()
    return app, {"authentication_token": token}
