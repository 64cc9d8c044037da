"""Tests of the API in this process, over real HTTP and a real database."""
