"""Make the old app's database: the seed tutorial's ``users`` table (Flask-SQLAlchemy's ``User``
model: ``_name``, ``_uid``, ``_email``, ``_password`` with a werkzeug hash, ``_role``) with a few
users, in ``volumes/sqlite.db`` as the tutorial keeps it.

    python make_database.py [PATH]      # default: volumes/sqlite.db beside this file
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from werkzeug.security import generate_password_hash

HERE = Path(__file__).resolve().parent
DEFAULT = HERE / "volumes" / "sqlite.db"

# (name, uid, email, password, role): the tutorial's users, with emails (authgate needs one).
USERS = [
    ("Thomas Edison", "toby", "toby@example.com", "123toby-lightbulb", "Admin"),
    ("Nikola Tesla", "niko", "niko@example.com", "123niko-alternating", "User"),
    ("Alexander Graham Bell", "lex", "lex@example.com", "123lex-telephone", "User"),
    ("Grace Hopper", "hop", None, "123hop-compiler", "User"),  # no email: refused on import
]


def make_database(path: Path = DEFAULT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS users")
        db.execute(
            """CREATE TABLE users (
                id INTEGER PRIMARY KEY,
                _name VARCHAR(255) NOT NULL,
                _uid VARCHAR(255) NOT NULL UNIQUE,
                _email VARCHAR(255),
                _password VARCHAR(255) NOT NULL,
                _role VARCHAR(20) NOT NULL DEFAULT 'User'
            )"""
        )
        db.executemany(
            "INSERT INTO users (_name, _uid, _email, _password, _role) VALUES (?, ?, ?, ?, ?)",
            [
                # werkzeug's default method (scrypt), as the tutorial's User.set_password makes it.
                (name, uid, email, generate_password_hash(password), role)
                for name, uid, email, password, role in USERS
            ],
        )
    return path


if __name__ == "__main__":
    made = make_database(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    print(f"{made}: {len(USERS)} users")
