"""signing keys in the database

Signing keys kept in the database (``AUTHGATE_SIGNING_KEYS=database``), their private keys sealed
with the key-encryption key. ``succeeds`` is unique: of two processes that rotate after the same
key at once, one adds its key.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("sealed_private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activates_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dev", sa.Boolean(), nullable=False),
        sa.Column("succeeds", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_authgate_signing_keys")),
        sa.UniqueConstraint("succeeds", name=op.f("uq_authgate_signing_keys_succeeds")),
    )


def downgrade() -> None:
    op.drop_table("authgate_signing_keys")
