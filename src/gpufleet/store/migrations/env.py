"""Alembic environment: runs on the connection gpufleet hands it (see store.migrate)."""

from alembic import context

from gpufleet.store.migrate import schema_of
from gpufleet.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=schema_of(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
