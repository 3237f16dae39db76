"""provider_tasks: the remote task each job attempt submitted (id, polling URL, attempt).

Revision ID: provider_tasks
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.models import UTCDateTime

revision = "provider_tasks"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_tasks",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(200), nullable=False),
        sa.Column("poll_url", sa.Text(), nullable=True),
        sa.Column("cancel_url", sa.Text(), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("result_url", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_provider_tasks_provider_task", "provider_tasks", ["provider", "task_id"])


def downgrade() -> None:
    op.drop_index("ix_provider_tasks_provider_task", table_name="provider_tasks")
    op.drop_table("provider_tasks")
