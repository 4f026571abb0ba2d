"""Start-up imports what serving needs and nothing more: no SQLAlchemy, Alembic or aiosqlite.

Loading them would cost more than the rest of start-up together (issue 12's
target: first answer within 0.8 s); they are for migrations and the switch-over.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "aiosqlite")


def test_what_serve_imports_leaves_the_migration_libraries_out(tmp_path) -> None:
    probe = (
        "import sys\n"
        "import connect_plugin.cli, connect_plugin.app, connect_plugin.defaults\n"
        "from connect_plugin.stores.compiled import statements_for\n"
        "statements_for('sqlite'); statements_for('postgresql')\n"
        f"print(sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY!r})))\n"
    )
    # Run away from the checkout, so that the package is the installed one (as the server runs it).
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
