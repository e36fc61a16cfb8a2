"""account tokens and invitations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_account_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("new_email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_account_tokens_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_authgate_account_tokens")),
    )
    with op.batch_alter_table("authgate_account_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_account_tokens_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_authgate_account_tokens_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "authgate_invitations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("inviter_id", sa.String(length=32), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(length=32), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["accepted_by"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_invitations_accepted_by_authgate_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_invitations_inviter_id_authgate_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["authgate_tenants.id"],
            name=op.f("fk_authgate_invitations_tenant_id_authgate_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_authgate_invitations_token_hash")),
    )
    with op.batch_alter_table("authgate_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_invitations_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authgate_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_invitations_tenant_id"))
    op.drop_table("authgate_invitations")
    with op.batch_alter_table("authgate_account_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_account_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_authgate_account_tokens_expires_at"))
    op.drop_table("authgate_account_tokens")
