"""Rewrite migration 0001 from store/tables.py.

Until the first release the schema has a single migration; after a change to tables.py run
``python scripts/regenerate_initial_migration.py``. After the first release, add new revisions
with ``alembic revision --autogenerate`` instead and leave 0001 alone.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from gpufleet.store.migrate import MIGRATIONS, alembic_config

VERSIONS = MIGRATIONS / "versions"


def main() -> int:
    for old in VERSIONS.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
    (path,) = VERSIONS.glob("0001_*.py")
    text = path.read_text()
    text = text.replace("astext_type=Text()", "astext_type=sa.Text()")
    text = "\n".join(line for line in text.splitlines() if "# ### " not in line) + "\n"
    lines = [
        "Create Date: regenerated" if line.startswith("Create Date:") else line
        for line in text.splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(path)], check=False)
    subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "-q", str(path)], check=False)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
