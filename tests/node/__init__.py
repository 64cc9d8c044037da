"""Tests that start real programs (marker: node)."""
