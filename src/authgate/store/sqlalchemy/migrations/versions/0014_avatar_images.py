"""avatar images in the database

The images that were files under ``<instance>/avatars/`` are copied in by
``authgate avatars import-dir`` (a migration knows no settings, so not the instance folder):
their names, and so the users' avatar URLs, stay the same.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_avatar_images",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_authgate_avatar_images")),
    )


def downgrade() -> None:
    op.drop_table("authgate_avatar_images")
