"""The single migration builds exactly the schema that ``store/tables.py`` describes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gpufleet.store.migrate import MIGRATIONS, alembic_config, current_revision, upgrade
from gpufleet.store.tables import metadata


def test_migrated_schema_matches_the_table_definitions(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_every_table_exists_with_its_columns(engine):
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_there_is_one_revision_and_the_database_is_at_it(engine):
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == ["0001"]
    assert [p.name for p in (MIGRATIONS / "versions").glob("*.py") if p.name != "__init__.py"] == [
        next(p.name for p in (MIGRATIONS / "versions").glob("0001_*.py"))
    ]
    assert current_revision(engine) == "0001"


def test_upgrading_again_is_harmless(engine):
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == "0001"
