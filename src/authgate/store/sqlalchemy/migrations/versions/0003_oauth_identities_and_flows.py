"""oauth identities and flows

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:57:32.222658
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "authgate_identities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_identities_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_identities")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_authgate_identities_provider")),
    )
    with op.batch_alter_table("authgate_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_identities_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "authgate_oauth_flows",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("binding_hash", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("redirect_to", sa.Text(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_oauth_flows_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_authgate_oauth_flows")),
    )
    with op.batch_alter_table("authgate_oauth_flows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_oauth_flows_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("authgate_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("avatar_url", sa.String(length=2048), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("authgate_users", schema=None) as batch_op:
        batch_op.drop_column("avatar_url")

    with op.batch_alter_table("authgate_oauth_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_oauth_flows_expires_at"))

    op.drop_table("authgate_oauth_flows")
    with op.batch_alter_table("authgate_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_identities_user_id"))

    op.drop_table("authgate_identities")
