"""The database: connection pool, watchdog, waiting, embedded Postgres, migrations."""
