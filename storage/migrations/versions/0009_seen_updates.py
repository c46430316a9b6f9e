"""Webhooks: the update ids already accepted, so that a retried delivery is served once.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-02 17:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.models import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_updates",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("update_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "update_id"),
    )
    with op.batch_alter_table("seen_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_seen_updates_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("seen_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seen_updates_received_at"))

    op.drop_table("seen_updates")
