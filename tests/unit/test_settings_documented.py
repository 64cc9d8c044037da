"""Every environment variable shared/config.py reads is documented for
operators: a row of README.md's configuration table and a line (commented
out with its default, or one of the seed's) in docker/env.example. Adding a
setting without documenting it fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# r.integer("PORT", ...), r.secret("DB_PASSWORD"), os.environ.get("KSNODE_GIT_HASH", ...)
READ = re.compile(r"\b(?:r\.\w+|environ\.get)\(\s*\"([A-Z][A-Z0-9_]+)\"")


def settings_read() -> set[str]:
    source = (ROOT / "shared" / "config.py").read_text()
    names = set(READ.findall(source))
    names |= set(re.findall(r"^ENV_FILE_VARIABLE = \"([A-Z_]+)\"", source, re.M))
    return names


def readme_table() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def env_example() -> set[str]:
    text = (ROOT / "docker" / "env.example").read_text()
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, re.M))


def test_the_pattern_finds_the_settings():
    # guards the regular expression itself: a rewrite of config.py that it
    # no longer understands must not make the checks below pass vacuously
    found = settings_read()
    assert {"PORT", "DB_PASSWORD", "NODE_ID", "KSNODE_ENV_FILE", "KSNODE_GIT_HASH"} <= found
    assert len(found) >= 60


def test_every_setting_is_in_the_readme_configuration_table():
    missing = sorted(settings_read() - readme_table())
    assert missing == [], f"add rows to README.md's configuration table: {missing}"


def test_every_setting_is_in_env_example():
    missing = sorted(settings_read() - env_example())
    assert missing == [], f"add '# NAME=default' lines to docker/env.example: {missing}"


def test_the_readme_table_names_no_setting_that_is_not_read():
    assert sorted(readme_table() - settings_read()) == []
