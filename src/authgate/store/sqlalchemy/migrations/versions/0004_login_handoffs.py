"""login handoffs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:51:29.311853
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_login_handoffs",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_login_handoffs_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authgate_login_handoffs")),
    )
    with op.batch_alter_table("authgate_login_handoffs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_login_handoffs_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("authgate_oauth_flows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handoff_challenge", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authgate_oauth_flows", schema=None) as batch_op:
        batch_op.drop_column("handoff_challenge")

    with op.batch_alter_table("authgate_login_handoffs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_login_handoffs_expires_at"))

    op.drop_table("authgate_login_handoffs")
