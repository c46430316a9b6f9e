"""Xóa dấu vết: the message ids of residents' private chats from the last 48 hours.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:05:12.412087
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_traces",
        sa.Column("trace_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("trace_key", "message_id"),
    )
    with op.batch_alter_table("chat_traces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_traces_hour"), ["hour"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_traces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_traces_hour"))

    op.drop_table("chat_traces")
