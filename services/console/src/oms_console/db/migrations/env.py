from oms_console.db.tables import metadata
from oms_runtime.migrations import run_migrations_env

run_migrations_env(metadata)
