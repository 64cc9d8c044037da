# Test stand-in for the official postgres image: Debian's PostgreSQL server
# on the locally made bookworm base (public registries are unreachable in
# the test environment). It honours POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB and PGPORT, keeps its data in /var/lib/postgresql/data, and
# doubles as the source of the PostgreSQL client the node image copies.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
COPY pg-major.sh /usr/local/bin/pg-major
ENV PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["postgres-entrypoint"]
