"""mail outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_mail_outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_mail_outbox")),
    )
    with op.batch_alter_table("authgate_mail_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_authgate_mail_outbox_next_attempt_at", ["next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authgate_mail_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_authgate_mail_outbox_next_attempt_at")
    op.drop_table("authgate_mail_outbox")
