"""Each setting's default is declared once, in the Config dataclass: an empty
environment loads exactly the dataclass defaults (only the home is made
absolute), so a default changed in one place cannot drift from the other."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from shared.config import Config, ConfigError, load_config


def test_an_empty_environment_loads_the_dataclass_defaults():
    loaded = load_config({})
    assert loaded == replace(Config(), home=Path("var").absolute())


def test_every_field_is_compared():
    # Config's equality covers every field (none is compare=False), so the
    # test above checks every default, not a chosen few.
    assert all(f.compare for f in fields(Config))


def test_blank_values_fall_back_to_the_dataclass_defaults():
    blank = {"HOST": "  ", "DB_USER": "", "NODE_ID": " ", "LOG_LEVEL": "", "GOOGLE_JWKS_URL": ""}
    loaded = load_config(blank)
    defaults = Config()
    assert loaded.host == defaults.host
    assert loaded.db_user == defaults.db_user
    assert loaded.node_id == defaults.node_id
    assert loaded.log_level == defaults.log_level
    assert loaded.google_jwks_url == defaults.google_jwks_url


def test_a_rejected_value_keeps_the_default_and_problems_keep_their_order():
    with pytest.raises(ConfigError) as caught:
        load_config({"PORT": "eighty", "DB_SSL": "maybe", "BACKUP_COMPRESSION": "12"})
    # DB_SSL is read first (as before the defaults moved), then the rest in field order.
    assert caught.value.problems == [
        "DB_SSL: expected true or false, got 'maybe'",
        "PORT: expected a whole number, got 'eighty'",
        "BACKUP_COMPRESSION: must be at most 9, got 12",
    ]
