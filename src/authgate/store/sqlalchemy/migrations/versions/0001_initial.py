"""initial schema: users, sessions, refresh tokens, revocation log

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:00:13.559144
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_revocations")),
    )
    with op.batch_alter_table("authgate_revocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_revocations_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "authgate_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("username_key", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(length=512), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_users")),
        sa.UniqueConstraint("email_key", name=op.f("uq_authgate_users_email_key")),
        sa.UniqueConstraint("username_key", name=op.f("uq_authgate_users_username_key")),
    )
    op.create_table(
        "authgate_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_sessions_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_sessions")),
    )
    with op.batch_alter_table("authgate_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_authgate_sessions_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_authgate_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "authgate_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["authgate_sessions.id"],
            name=op.f("fk_authgate_refresh_tokens_session_id_authgate_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_authgate_refresh_tokens")),
    )
    with op.batch_alter_table("authgate_refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_refresh_tokens_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authgate_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_refresh_tokens_session_id"))

    op.drop_table("authgate_refresh_tokens")
    with op.batch_alter_table("authgate_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_sessions_user_id"))
        batch_op.drop_index("ix_authgate_sessions_expires_at")

    op.drop_table("authgate_sessions")
    op.drop_table("authgate_users")
    with op.batch_alter_table("authgate_revocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_revocations_created_at"))

    op.drop_table("authgate_revocations")
