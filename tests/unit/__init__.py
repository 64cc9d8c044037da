"""Tests of one module at a time: no server, at most a database."""
