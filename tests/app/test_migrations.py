"""The alembic migration builds the schema the models describe, and re-running it is a no-op."""

from __future__ import annotations

from sqlalchemy import inspect

from app.db import Database
from app.migrate import migrate
from app.models import Base


async def test_migrations_create_the_models_schema_and_are_idempotent(database: Database):
    await migrate(database)
    await migrate(database)

    def describe(connection):
        inspector = inspect(connection)
        return {
            table: sorted(column["name"] for column in inspector.get_columns(table))
            for table in inspector.get_table_names()
        }

    tables = await database.read(describe)
    expected = {
        table.name: sorted(column.name for column in table.columns)
        for table in Base.metadata.sorted_tables
    }
    assert {name: tables[name] for name in expected} == expected
    assert "alembic_version" in tables
