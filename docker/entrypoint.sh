#!/bin/sh
# Container entrypoint: run migrations, then supervise the three programs.
set -eu
exec ksnode up
