"""second factors: TOTP and recovery codes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_totp_secrets",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("sealed_secret", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_totp_secrets_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_authgate_totp_secrets")),
    )
    op.create_table(
        "authgate_recovery_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_recovery_codes_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authgate_recovery_codes")),
    )
    with op.batch_alter_table("authgate_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_recovery_codes_user_id"), ["user_id"], unique=False
        )
    op.create_table(
        "authgate_mfa_challenges",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=True),
        sa.Column("throttle_key", sa.String(length=320), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("amr", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_mfa_challenges_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_authgate_mfa_challenges")),
    )
    with op.batch_alter_table("authgate_mfa_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_mfa_challenges_user_id"), ["user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_authgate_mfa_challenges_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("authgate_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_time", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authgate_sessions", schema=None) as batch_op:
        batch_op.drop_column("amr")
        batch_op.drop_column("auth_time")
    with op.batch_alter_table("authgate_mfa_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_mfa_challenges_expires_at"))
        batch_op.drop_index(batch_op.f("ix_authgate_mfa_challenges_user_id"))
    op.drop_table("authgate_mfa_challenges")
    with op.batch_alter_table("authgate_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_recovery_codes_user_id"))
    op.drop_table("authgate_recovery_codes")
    op.drop_table("authgate_totp_secrets")
