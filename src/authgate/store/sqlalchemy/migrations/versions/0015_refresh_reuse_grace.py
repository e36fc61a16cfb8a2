"""refresh token lineage for the reuse grace window

``rotated_from``: the hash of the token whose rotation issued this one (NULL: a login's first
token, or one issued before this migration). ``superseded_at``: when a grace re-rotation of
its parent killed this token unused (``AUTHGATE_REFRESH_REUSE_GRACE_SECONDS``); such a token is
also spent (``used_at``), so presenting it is a reuse.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("authgate_refresh_tokens") as batch:
        batch.add_column(sa.Column("rotated_from", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authgate_refresh_tokens") as batch:
        batch.drop_column("superseded_at")
        batch.drop_column("rotated_from")
