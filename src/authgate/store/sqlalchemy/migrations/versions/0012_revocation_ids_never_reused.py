"""revocation ids never reused

The revocation log's ids are the cursor of every process's poller. SQLite hands out
max(id) + 1, so once pruning had emptied the table a new revocation could get an id a poller had
already passed (and be missed by the other processes). AUTOINCREMENT makes SQLite's ids
monotonic; PostgreSQL's sequence already is, and is left alone.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "authgate_revocations",
        recreate="always",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
