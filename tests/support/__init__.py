"""Helpers the tests share: fakes, programs, clients."""
