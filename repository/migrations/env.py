"""Alembic environment of the repository index; run programmatically by repository.db.migrate()."""
from __future__ import annotations

from alembic import context

from repository.models import Base

VERSION_TABLE = "repository_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("repository migrations run through repository.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
