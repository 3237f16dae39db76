"""Alembic migrations of the app's schema, run programmatically at start-up (``app.migrate``)."""
