#!/bin/sh
# Prints the major version of the installed PostgreSQL server.
ls /usr/lib/postgresql | sort -n | tail -n 1
