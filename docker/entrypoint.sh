#!/bin/sh
# Container entrypoint: run migrations, then supervise the three programs.
# With a command (`docker compose run --rm key_share_node ksnode check`),
# run that instead.
set -eu
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec ksnode up
