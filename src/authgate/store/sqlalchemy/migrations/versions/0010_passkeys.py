"""passkeys (WebAuthn credentials)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_passkeys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("credential_key", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.Text(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_passkeys_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_passkeys")),
        sa.UniqueConstraint("credential_key", name=op.f("uq_authgate_passkeys_credential_key")),
    )
    with op.batch_alter_table("authgate_passkeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authgate_passkeys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "authgate_webauthn_challenges",
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("binding_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_webauthn_challenges_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge_hash", name=op.f("pk_authgate_webauthn_challenges")),
    )
    with op.batch_alter_table("authgate_webauthn_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_webauthn_challenges_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_authgate_webauthn_challenges_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authgate_webauthn_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_webauthn_challenges_user_id"))
        batch_op.drop_index(batch_op.f("ix_authgate_webauthn_challenges_expires_at"))
    op.drop_table("authgate_webauthn_challenges")
    with op.batch_alter_table("authgate_passkeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_passkeys_user_id"))
    op.drop_table("authgate_passkeys")
