"""user legacy id

The id a user had in the app it was imported from (``authgate users import``): legacy API
tokens are bound to it and legacy session tokens may name the user by it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("authgate_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legacy_id", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_authgate_users_legacy_id"), ["legacy_id"])


def downgrade() -> None:
    with op.batch_alter_table("authgate_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_authgate_users_legacy_id"), type_="unique")
        batch_op.drop_column("legacy_id")
