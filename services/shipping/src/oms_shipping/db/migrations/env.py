from oms_runtime.migrations import run_migrations_env
from oms_shipping.db.tables import metadata

run_migrations_env(metadata)
