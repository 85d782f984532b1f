cd /work/main && rm -f src/cloudcc/store/migrations/versions/0001_initial.py /tmp/gen.db && .venv/bin/python - <<'PY'
from sqlalchemy import create_engine
from alembic import command
from cloudcc.store.db import alembic_config
import cloudcc.store.tables  # noqa
eng = create_engine("sqlite:////tmp/gen.db")
with eng.begin() as conn:
    cfg = alembic_config(conn)
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
PY
mv src/cloudcc/store/migrations/versions/0001_*.py src/cloudcc/store/migrations/versions/0001_initial.py
sed -i "s/cloudcc.store.tables.UTCDateTime(timezone=True)/sa.DateTime(timezone=True)/g; s/cloudcc.store.tables.UTCDateTime()/sa.DateTime(timezone=True)/g" src/cloudcc/store/migrations/versions/0001_initial.py
.venv/bin/ruff format -q src/cloudcc/store/migrations
grep -c create_table src/cloudcc/store/migrations/versions/0001_initial.py
