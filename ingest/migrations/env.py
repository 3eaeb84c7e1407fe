"""Alembic environment of the bulk-run ledger; run programmatically by ingest.ledger.migrate().

The ledger lives in the same SQL database as the repository index but has its own version table,
so the two migration histories never collide.
"""
from __future__ import annotations

from alembic import context

from ingest.ledger import VERSION_TABLE, Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("ledger migrations run through ingest.ledger.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
