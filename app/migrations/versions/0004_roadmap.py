"""Priorities, scheduled jobs and dependencies: four job columns and the dependency edges.

Revision ID: roadmap
Revises: lifecycle
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.models import UTCDateTime

revision = "roadmap"
down_revision = "lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("priority", sa.String(8), nullable=False, server_default="normal")
        )
        batch.add_column(sa.Column("run_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("depends_on", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("waiting_for", sa.JSON(), nullable=True))
    op.create_table(
        "job_dependencies",
        sa.Column("parent_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("child_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
    )
    op.create_index("ix_job_dependencies_child_id", "job_dependencies", ["child_id"])


def downgrade() -> None:
    op.drop_index("ix_job_dependencies_child_id", table_name="job_dependencies")
    op.drop_table("job_dependencies")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("waiting_for")
        batch.drop_column("depends_on")
        batch.drop_column("run_at")
        batch.drop_column("priority")
