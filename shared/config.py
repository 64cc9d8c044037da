"""Settings read from the environment.

This is the only module that reads ``os.environ``. Every setting is parsed by a
small typed helper; problems are collected and raised together as one
``ConfigError`` naming every offending variable, so an operator fixes them all
in one go. Secrets may also be given as ``NAME_FILE`` (a path whose contents are
the value), the Docker-secrets convention.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar, overload
from urllib.parse import urlparse

from shared.errors import ConfigurationFailure

LOG_LEVELS = ("debug", "info", "warning", "warn", "error", "critical")

# Reference defaults (spec §4.3, §4.4, §4.5, §4.6).
GOOGLE_CLIENT_ID_DEFAULT = (
    "421793224165-cpmbt6enqrj6ad6n4ujokham8qdmnnln.apps.googleusercontent.com"
)
GOOGLE_JWKS_URL_DEFAULT = "https://www.googleapis.com/oauth2/v3/certs"
AUTH0_DOMAIN_DEFAULT = "auth0.oko.app"
AUTH0_CLIENT_ID_DEFAULT = "GnPcFAjGKAcXZpAzQ8vGBmzfcfV2hu1Q"
X_USERINFO_URL_DEFAULT = "https://api.x.com/2/users/me"
DISCORD_USERINFO_URL_DEFAULT = "https://discord.com/api/users/@me"

ENV_FILE_VARIABLE = "KSNODE_ENV_FILE"
# The operator guide's (and docker/env.example's) ADMIN_PASSWORD: published,
# so it enables nothing (services/api/routes/admin.py).
EXAMPLE_ADMIN_PASSWORD = "admin_password"
OPS_TOKEN_MIN_LENGTH = 16


class ConfigError(ConfigurationFailure):
    """One or more settings are missing or invalid; ``problems`` lists each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class Secret(str):
    """A string that never shows its value in ``repr``/logs by accident."""

    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "Secret('***')" if self else "Secret('')"


@dataclass(frozen=True)
class Config:
    # HTTP
    port: int = 4201
    host: str = "0.0.0.0"
    api_threads: int = 4
    api_workers: int = 0  # 0: one per usable CPU core, at most 8
    rate_limit_per_minute: int = 100
    trust_proxy_hops: int = 0
    # The peers whose X-Forwarded-For is believed (with TRUST_PROXY_HOPS > 0):
    # loopback and the private ranges, where a node's own proxy lives. A
    # request from any other address (the port reached directly) is keyed by
    # its own address, whatever header it carries.
    trusted_proxies: tuple[str, ...] = (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    )
    # Wrong admin passwords: the longest wait a back-off imposes (admin_backoff.py).
    admin_backoff_max_seconds: float = 300.0
    # The admin routes' own limits and back-off. No setting reads it: the
    # operator cannot turn them off; the test suite does, for tests of other
    # things that call the admin routes many times (tests/conftest.py).
    admin_limits: bool = True
    api_max_connections_per_client: int = 100  # 0: no cap
    api_header_timeout_seconds: float = 10.0
    api_idle_timeout_seconds: int = 60
    # Database; db_host None means "start the embedded Postgres"
    db_host: str | None = None  # one host, or a comma list (libpq multi-host)
    db_port: int = 5432  # the first (or only) port
    # DB_PORT as a comma list: one port per DB_HOST entry (empty: db_port for all)
    db_ports: tuple[int, ...] = ()
    # Backups may read from a standby (pg_dump with target_session_attrs=prefer-standby)
    backup_from_standby: bool = False
    # libpq target_session_attrs (not a setting: a dump from a standby pins
    # the server it chose with "any"; everything else needs read-write)
    db_session_attrs: str = "read-write"
    db_user: str = "postgres"
    db_password: Secret = field(default_factory=lambda: Secret(""))
    db_name: str = "key_share_node"
    db_ssl: bool = False
    db_sslmode: str | None = None
    db_sslrootcert: str | None = None
    db_pool_size: int = 20
    db_query_timeout_seconds: float = 10.0  # the API's statements (dbwatch.py)
    # Files and folders
    home: Path = Path("var")
    encryption_secret_path: Path | None = None
    dump_dir: Path | None = None
    log_dir: Path | None = None
    log_level: str = "info"
    # Embedded Postgres inside a container's own layer (lost with it): refused unless true
    allow_ephemeral_db: bool = False
    # Secrets and peers
    admin_password: Secret = field(default_factory=lambda: Secret(""))
    telegram_bot_token: Secret = field(default_factory=lambda: Secret(""))
    oko_api_base_url: str | None = None
    ks_node_report_password: Secret = field(default_factory=lambda: Secret(""))
    # Operator credential for /health, /metrics and the backup history's details
    # (services/api/ops/token.py); empty: anonymous detail only
    ops_token: Secret = field(default_factory=lambda: Secret(""))
    # Reporter
    report_interval_seconds: float = 180.0
    report_timeout_seconds: float = 10.0
    heartbeat_interval_seconds: float = 10.0
    status_cache_seconds: float = 1.0
    # Backups
    backup_interval_seconds: float = 86400.0
    backup_retention_days: float = 7.0
    backup_min_keep: int = 3
    backup_selfcheck: bool = True
    backup_job_timeout_seconds: float = 300.0
    backup_poll_seconds: float = 1.0
    backup_compression: int = 1
    pg_bin_dir: Path | None = None
    pg_dump_bin: str | None = None
    pg_restore_bin: str | None = None
    # Backups: deadlines, back-off, tools, drills (issue 11)
    backup_retry_min_seconds: float = 60.0
    backup_retry_max_seconds: float = 3600.0
    backup_tools_retry_seconds: float = 60.0
    backup_drill_interval_seconds: float = 604800.0
    backup_overdue_grace_seconds: float = 3600.0
    # Social login
    google_client_id: str = GOOGLE_CLIENT_ID_DEFAULT
    google_jwks_url: str = GOOGLE_JWKS_URL_DEFAULT
    auth0_domain: str = AUTH0_DOMAIN_DEFAULT
    auth0_client_id: str = AUTH0_CLIENT_ID_DEFAULT
    auth0_jwks_url: str | None = None
    x_userinfo_url: str = X_USERINFO_URL_DEFAULT
    discord_userinfo_url: str = DISCORD_USERINFO_URL_DEFAULT
    auth_http_timeout_seconds: float = 5.0
    jwt_leeway_seconds: float = 0.0
    # Several nodes on one database
    node_id: str = ""  # empty: host name plus home (effective_node_id)
    # Audit trail (shared/audit/records.py)
    audit_enabled: bool = True
    audit_retention_days: float = 90.0
    audit_checks: bool = False
    # Commit-reveal: "optional" serves clients without it unless their token
    # is committed here; "required" refuses them on v2.
    commit_reveal: str = "optional"
    # Shares in a format not sealed to their owner (legacy, ksn1, ksn2):
    # "serve" them (an adopted reference database), or "refuse" them once
    # `ksnode reencrypt` has bound every row, so an old value written back
    # by someone holding the database is never served.
    unbound_shares: str = "serve"
    # Secret rotation: older secrets whose rows stay readable until `ksnode reencrypt`
    encryption_secret_previous_paths: tuple[Path, ...] = ()

    # ---- derived values -------------------------------------------------
    @property
    def effective_api_workers(self) -> int:
        if self.api_workers > 0:
            return self.api_workers
        # One process per usable core: each runs one request at a time
        # (services/api/server/gate.py), so more processes than cores only take
        # turns on them. Measured on 2 cores: 2 workers serve v1 get about
        # 20% faster than 3, with a third of the p99.
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))

    @property
    def effective_node_id(self) -> str:
        """This node's name among the nodes sharing the database: NODE_ID, else
        ``host:home`` (stable across restarts, distinct for two homes on a host)."""
        return self.node_id or f"{socket.gethostname()}:{self.home}"

    @property
    def embedded_db(self) -> bool:
        return self.db_host is None

    @property
    def effective_dump_dir(self) -> Path:
        return self.dump_dir if self.dump_dir is not None else self.home / "dump"

    @property
    def effective_log_dir(self) -> Path:
        return self.log_dir if self.log_dir is not None else self.home / "logs"

    @property
    def effective_secret_path(self) -> Path:
        if self.encryption_secret_path is not None:
            return self.encryption_secret_path
        return self.home / "encryption_secret.txt"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def pg_data_dir(self) -> Path:
        return self.home / "pg_data"

    @property
    def effective_auth0_jwks_url(self) -> str:
        return self.auth0_jwks_url or f"https://{self.auth0_domain}/.well-known/jwks.json"

    def with_db(self, host: str, port: int, password: str | None = None) -> Config:
        """This config pointed at a started server (``password``: the embedded
        one's, from its password file)."""
        if password is None:
            return replace(self, db_host=host, db_port=port, db_ports=())
        return replace(self, db_host=host, db_port=port, db_ports=(), db_password=Secret(password))

    @property
    def db_port_text(self) -> str:
        """DB_PORT as libpq takes it: one port, or one per host, comma-separated."""
        return ",".join(str(p) for p in self.db_ports) if self.db_ports else str(self.db_port)

    def redacted(self) -> dict[str, object]:
        """Settings as a dict safe to log: secrets show only whether they are set."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                out[f.name] = "set" if value else "unset"
            elif isinstance(value, Path):
                out[f.name] = str(value)
            elif isinstance(value, tuple):
                out[f.name] = [str(item) for item in value]
            else:
                out[f.name] = value
        return out


# ---------------------------------------------------------------------------
# Typed helpers. Each records a problem instead of raising, so that one run
# reports every bad variable.


_Number = TypeVar("_Number", int, float)
_T = TypeVar("_T")


class _Refused(ConfigurationFailure, ValueError):
    """A parser's refusal; its text says what was expected. Caught in
    _Reader._parsed, which records it as one of the load's problems."""


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Refused("a whole number") from None


def _finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Refused("a number") from None
    if not math.isfinite(value):
        raise _Refused("a finite number")
    return value


_FLAG_WORDS = {"true": True, "1": True, "yes": True, "on": True}
_FLAG_WORDS |= {"false": False, "0": False, "no": False, "off": False}


def _true_or_false(text: str) -> bool:
    try:
        return _FLAG_WORDS[text.lower()]
    except KeyError:
        raise _Refused("true or false") from None


def _http_url(text: str) -> str:
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise _Refused("an http(s) URL")
    return text


def _one_of(choices: tuple[str, ...], text: str) -> str:
    if text.lower() not in choices:
        raise _Refused(f"one of {', '.join(choices)}")
    return text.lower()


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []
        self.names: set[str] = set()  # every name looked up (setting_names)

    def raw(self, name: str) -> str | None:
        self.names.add(name)
        value = self.env.get(name)
        if value is None:
            return None
        return value

    # The readers are named after what they read, not after the builtins
    # (``str``, ``int``...): a method named ``str`` shadows the type in every
    # annotation below it. The overloads say that a reader given a default
    # never returns None.
    @overload
    def text(self, name: str) -> str | None: ...
    @overload
    def text(self, name: str, default: str) -> str: ...
    @overload
    def text(self, name: str, default: str | None) -> str | None: ...
    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def secret(self, name: str) -> Secret:
        """``NAME`` or ``NAME_FILE``; the file's contents are used without
        the trailing newline editors add (the encryption secret is different:
        it is a file path and read verbatim, see crypto.py)."""
        direct = self.raw(name)
        file_name = self.raw(f"{name}_FILE")
        if direct and file_name:
            self.problems.append(f"{name}: set either {name} or {name}_FILE, not both")
            return Secret("")
        if file_name:
            try:
                text = Path(file_name).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                self.problems.append(f"{name}_FILE: cannot read {file_name}: {exc.strerror}")
                return Secret("")
            except UnicodeDecodeError:
                self.problems.append(f"{name}_FILE: {file_name} is not UTF-8 text")
                return Secret("")
            return Secret(text.rstrip("\r\n"))
        return Secret(direct or "")

    def _parsed(self, name: str, parse: Callable[[str], _T]) -> _T | None:
        """The variable parsed, or None: when it is unset, or when ``parse``
        refuses it (the problem is recorded). Every typed reader goes through
        here, so the wording of a refusal is written once."""
        text = self.text(name)
        if text is None:
            return None
        try:
            return parse(text)
        except _Refused as exc:
            self.problems.append(f"{name}: expected {exc}, got {text!r}")
            return None

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        return self._in_range(name, _whole_number, default, minimum, maximum)

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        return self._in_range(name, _finite_number, default, minimum, maximum)

    def _in_range(
        self,
        name: str,
        parse: Callable[[str], _Number],
        default: _Number,
        minimum: float | None,
        maximum: float | None,
    ) -> _Number:
        value = self._parsed(name, parse)
        if value is None:
            return default
        if minimum is not None and value < minimum:
            self.problems.append(f"{name}: must be at least {minimum}, got {value}")
            return default
        if maximum is not None and value > maximum:
            self.problems.append(f"{name}: must be at most {maximum}, got {value}")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._parsed(name, _true_or_false)
        return default if value is None else value

    @overload
    def path(self, name: str, default: Path) -> Path: ...
    @overload
    def path(self, name: str, default: Path | None = None) -> Path | None: ...
    def path(self, name: str, default: Path | None = None) -> Path | None:
        text = self.text(name)
        if text is None:
            return default
        # Like the reference: only a leading "~" is expanded.
        return Path(text).expanduser()

    def networks(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A comma-separated list of addresses or CIDR networks, normalised."""
        text = self.text(name)
        if text is None:
            return default
        found = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                found.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                self.problems.append(f"{name}: {item!r} is not an IP address or network")
        return tuple(found)

    def paths(self, name: str) -> tuple[Path, ...]:
        """A comma-separated list of files (empty items ignored), made absolute."""
        text = self.text(name) or ""
        return tuple(
            Path(item.strip()).expanduser().absolute() for item in text.split(",") if item.strip()
        )

    @overload
    def url(self, name: str, default: str) -> str: ...
    @overload
    def url(self, name: str, default: str | None = None) -> str | None: ...
    def url(self, name: str, default: str | None = None) -> str | None:
        value = self._parsed(name, _http_url)
        return default if value is None else value

    def db_hosts(
        self, host_text: str | None, port_text: str | None, default_port: int
    ) -> tuple[str | None, tuple[int, ...]]:
        """DB_HOST and DB_PORT: one each, or comma lists as libpq takes them
        (several hosts, and one port for all or one per host)."""
        hosts = [item.strip() for item in (host_text or "").split(",")]
        if host_text is not None and not all(hosts):
            self.problems.append(f"DB_HOST: an empty entry in the list {host_text!r}")
        port_text = port_text or str(default_port)
        ports: list[int] = []
        for item in port_text.split(","):
            item = item.strip()
            if not item.isdigit() or not 1 <= int(item) <= 65535:
                self.problems.append(
                    f"DB_PORT: expected a whole number from 1 to 65535 (or a comma list "
                    f"of them), got {port_text!r}"
                )
                return host_text, (default_port,)
            ports.append(int(item))
        if len(ports) > 1 and len(ports) != len(hosts):
            self.problems.append(
                f"DB_PORT: {len(ports)} ports for {len(hosts)} DB_HOST entries "
                "(give one port for all, or one per host)"
            )
        host = ",".join(hosts) if host_text is not None else None
        return host, tuple(ports)

    @overload
    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str: ...
    @overload
    def choice(self, name: str, choices: tuple[str, ...], default: str | None) -> str | None: ...
    def choice(self, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
        value = self._parsed(name, lambda text: _one_of(choices, text))
        return default if value is None else value


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def parse_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv-style file: ``KEY=value`` lines, ``#`` comments,
    optional ``export``, single or double quotes around the value."""
    values: dict[str, str] = {}
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A value typed in another encoding (a Latin-1 password): name the
        # line, never a traceback from every command that reads the file.
        where = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{path}:{where}: not UTF-8 text (save the env file as UTF-8)"]
        ) from None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise ConfigError([f"{path}:{number}: expected KEY=value"])
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def environment(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The process environment, completed by an env file that never overrides it.

    The file is ``env_file`` if given, else ``$KSNODE_ENV_FILE`` if set.
    """
    base = dict(os.environ if environ is None else environ)
    if env_file is None and base.get(ENV_FILE_VARIABLE):
        env_file = Path(base[ENV_FILE_VARIABLE]).expanduser()
    if env_file is None:
        return base
    try:
        from_file = parse_env_file(env_file)
    except OSError as exc:
        raise ConfigError(
            [f"{ENV_FILE_VARIABLE}: cannot read env file {env_file}: {exc.strerror}"]
        ) from None
    merged = dict(from_file)
    merged.update(base)
    return merged


COMMIT_REVEAL_MODES = ("optional", "required")
UNBOUND_SHARES_MODES = ("serve", "refuse")


def load_config(
    environ: Mapping[str, str] | None = None, *, env_file: Path | None = None
) -> Config:
    """Build the Config from the environment or raise ConfigError."""
    r = _Reader(environment(env_file, environ))
    config = _read_config(r)
    if r.problems:
        raise ConfigError(r.problems)
    return config


# Names of the operator guide's .env that only Docker Compose reads (volume
# and build settings), and names read outside this module: not typos.
COMPOSE_ONLY_NAMES = frozenset({"PG_DATA_DIR", "BASE_IMAGE", "PG_CLIENT_IMAGE", "PG_CLIENT_MAJOR"})
OTHER_SETTING_NAMES = frozenset(
    {
        "KSNODE_GIT_HASH",
        ENV_FILE_VARIABLE,
        # set by `ksnode up` for supervisord.conf and the programs
        "KSNODE_PYTHON",
        "KSNODE_PROGRAM_USER",
        "KSNODE_SUPERVISOR_LOGS",
    }
)


def setting_names() -> frozenset[str]:
    """Every name the node reads, and the compose file's own."""
    reader = _Reader({})
    _read_config(reader)
    return frozenset(reader.names) | COMPOSE_ONLY_NAMES | OTHER_SETTING_NAMES


def misspelt_settings(env: Mapping[str, str]) -> list[str]:
    """Variables that are no setting but nearly spell one (``DUMP_DRI``):
    ignored, so the node would run on the default. Only near misses are
    named: the environment carries many other variables."""
    known = setting_names()
    found = []
    for name in sorted(env):
        # libpq reads its own PG* variables (PGHOST is no typo of HOST)
        if name in known or (name.startswith("PG") and not name.startswith("PG_")):
            continue
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if near:
            found.append(f"{name} is not a setting and is ignored: did you mean {near[0]}?")
    return found


def _read_config(r: _Reader) -> Config:
    """The Config ``r``'s environment gives; its problems are left in ``r``."""
    # The defaults are the Config fields' own: declared once, in the dataclass.
    d = Config()
    # Read before the others, as always: a problem list keeps its order.
    home = r.path("KSNODE_HOME", d.home)
    db_ssl = r.flag("DB_SSL", d.db_ssl)
    trust_proxy_hops = r.integer("TRUST_PROXY_HOPS", d.trust_proxy_hops, minimum=0, maximum=10)
    db_host, db_ports = r.db_hosts(r.text("DB_HOST"), r.text("DB_PORT"), d.db_port)
    config = Config(
        port=_api_port(r, d.port),
        host=r.text("HOST", d.host),
        api_threads=r.integer("API_THREADS", d.api_threads, minimum=1, maximum=256),
        api_workers=r.integer("API_WORKERS", d.api_workers, minimum=0, maximum=64),
        rate_limit_per_minute=r.integer(
            "RATE_LIMIT_PER_MINUTE", d.rate_limit_per_minute, minimum=0
        ),
        trust_proxy_hops=trust_proxy_hops,
        trusted_proxies=r.networks("TRUSTED_PROXIES", d.trusted_proxies),
        admin_backoff_max_seconds=r.number(
            "ADMIN_BACKOFF_MAX_SECONDS", d.admin_backoff_max_seconds, minimum=1, maximum=86400
        ),
        api_max_connections_per_client=r.integer(
            "API_MAX_CONNECTIONS_PER_CLIENT",
            d.api_max_connections_per_client,
            minimum=0,
            maximum=100_000,
        ),
        api_header_timeout_seconds=r.number(
            "API_HEADER_TIMEOUT_SECONDS", d.api_header_timeout_seconds, minimum=1, maximum=300
        ),
        api_idle_timeout_seconds=r.integer(
            "API_IDLE_TIMEOUT_SECONDS", d.api_idle_timeout_seconds, minimum=1, maximum=3600
        ),
        db_host=db_host,
        db_port=db_ports[0],
        db_ports=db_ports if len(db_ports) > 1 else (),
        backup_from_standby=r.flag("BACKUP_FROM_STANDBY", d.backup_from_standby),
        db_user=r.text("DB_USER", d.db_user),
        db_password=r.secret("DB_PASSWORD"),
        db_name=r.text("DB_NAME", d.db_name),
        db_ssl=db_ssl,
        db_sslmode=r.choice("DB_SSLMODE", SSL_MODES, d.db_sslmode),
        db_sslrootcert=r.text("DB_SSLROOTCERT", d.db_sslrootcert),
        db_pool_size=r.integer("DB_POOL_SIZE", d.db_pool_size, minimum=2, maximum=500),
        db_query_timeout_seconds=r.number(
            "DB_QUERY_TIMEOUT_SECONDS", d.db_query_timeout_seconds, minimum=1, maximum=600
        ),
        home=home.absolute(),
        encryption_secret_path=_absolute(_secret_path(r, d.encryption_secret_path)),
        dump_dir=_absolute(r.path("DUMP_DIR", d.dump_dir)),
        log_dir=_absolute(r.path("LOG_DIR", d.log_dir)),
        log_level=r.choice("LOG_LEVEL", LOG_LEVELS, d.log_level),
        allow_ephemeral_db=r.flag("ALLOW_EPHEMERAL_DB", d.allow_ephemeral_db),
        admin_password=r.secret("ADMIN_PASSWORD"),
        telegram_bot_token=r.secret("TELEGRAM_BOT_TOKEN"),
        oko_api_base_url=r.url("OKO_API_BASE_URL", d.oko_api_base_url),
        ks_node_report_password=r.secret("KS_NODE_REPORT_PASSWORD"),
        ops_token=r.secret("OPS_TOKEN"),
        report_interval_seconds=r.number(
            "REPORT_INTERVAL_SECONDS", d.report_interval_seconds, minimum=0.05
        ),
        report_timeout_seconds=r.number(
            "REPORT_TIMEOUT_SECONDS", d.report_timeout_seconds, minimum=0.1, maximum=600
        ),
        heartbeat_interval_seconds=r.number(
            "HEARTBEAT_INTERVAL_SECONDS", d.heartbeat_interval_seconds, minimum=0.05
        ),
        status_cache_seconds=r.number(
            "STATUS_CACHE_SECONDS", d.status_cache_seconds, minimum=0, maximum=60
        ),
        backup_interval_seconds=r.number(
            "BACKUP_INTERVAL_SECONDS", d.backup_interval_seconds, minimum=1
        ),
        backup_retention_days=r.number("BACKUP_RETENTION_DAYS", d.backup_retention_days, minimum=0),
        backup_min_keep=r.integer("BACKUP_MIN_KEEP", d.backup_min_keep, minimum=1),
        backup_selfcheck=r.flag("BACKUP_SELFCHECK", d.backup_selfcheck),
        backup_job_timeout_seconds=r.number(
            "BACKUP_JOB_TIMEOUT_SECONDS", d.backup_job_timeout_seconds, minimum=1
        ),
        backup_poll_seconds=r.number(
            "BACKUP_POLL_SECONDS", d.backup_poll_seconds, minimum=0.05, maximum=60
        ),
        backup_compression=r.integer(
            "BACKUP_COMPRESSION", d.backup_compression, minimum=0, maximum=9
        ),
        pg_bin_dir=_absolute(r.path("PG_BIN_DIR", d.pg_bin_dir)),
        pg_dump_bin=r.text("PG_DUMP_BIN", d.pg_dump_bin),
        pg_restore_bin=r.text("PG_RESTORE_BIN", d.pg_restore_bin),
        backup_retry_min_seconds=r.number(
            "BACKUP_RETRY_MIN_SECONDS", d.backup_retry_min_seconds, minimum=0.1
        ),
        backup_retry_max_seconds=r.number(
            "BACKUP_RETRY_MAX_SECONDS", d.backup_retry_max_seconds, minimum=0.1
        ),
        backup_tools_retry_seconds=r.number(
            "BACKUP_TOOLS_RETRY_SECONDS", d.backup_tools_retry_seconds, minimum=0.1
        ),
        backup_drill_interval_seconds=r.number(
            "BACKUP_DRILL_INTERVAL_SECONDS", d.backup_drill_interval_seconds, minimum=0
        ),
        backup_overdue_grace_seconds=r.number(
            "BACKUP_OVERDUE_GRACE_SECONDS", d.backup_overdue_grace_seconds, minimum=0
        ),
        google_client_id=r.text("GOOGLE_CLIENT_ID", d.google_client_id),
        google_jwks_url=r.url("GOOGLE_JWKS_URL", d.google_jwks_url),
        auth0_domain=r.text("AUTH0_DOMAIN", d.auth0_domain),
        auth0_client_id=r.text("AUTH0_CLIENT_ID", d.auth0_client_id),
        auth0_jwks_url=r.url("AUTH0_JWKS_URL", d.auth0_jwks_url),
        x_userinfo_url=r.url("X_USERINFO_URL", d.x_userinfo_url),
        discord_userinfo_url=r.url("DISCORD_USERINFO_URL", d.discord_userinfo_url),
        auth_http_timeout_seconds=r.number(
            "AUTH_HTTP_TIMEOUT_SECONDS", d.auth_http_timeout_seconds, minimum=0.1, maximum=60
        ),
        jwt_leeway_seconds=r.number(
            "JWT_LEEWAY_SECONDS", d.jwt_leeway_seconds, minimum=0, maximum=600
        ),
        node_id=r.text("NODE_ID", d.node_id),
        audit_enabled=r.flag("AUDIT_ENABLED", d.audit_enabled),
        audit_retention_days=r.number("AUDIT_RETENTION_DAYS", d.audit_retention_days, minimum=0),
        audit_checks=r.flag("AUDIT_CHECKS", d.audit_checks),
        commit_reveal=r.text("COMMIT_REVEAL", d.commit_reveal).lower(),
        unbound_shares=r.text("UNBOUND_SHARES", d.unbound_shares).lower(),
        encryption_secret_previous_paths=r.paths("ENCRYPTION_SECRET_PREVIOUS_PATHS"),
    )
    if config.ops_token and len(config.ops_token) < OPS_TOKEN_MIN_LENGTH:
        # A short token is guessable over HTTP, and /metrics has no guessing limit.
        r.problems.append(f"OPS_TOKEN: at least {OPS_TOKEN_MIN_LENGTH} characters")
    if config.commit_reveal not in COMMIT_REVEAL_MODES:
        r.problems.append(
            f"COMMIT_REVEAL: one of {', '.join(COMMIT_REVEAL_MODES)}, got {config.commit_reveal!r}"
        )
    if config.unbound_shares not in UNBOUND_SHARES_MODES:
        r.problems.append(
            f"UNBOUND_SHARES: one of {', '.join(UNBOUND_SHARES_MODES)},"
            f" got {config.unbound_shares!r}"
        )
    if len(config.node_id) > 200:
        r.problems.append("NODE_ID: at most 200 characters")
    if config.db_host is not None and config.encryption_secret_path is None:
        r.problems.append(
            "ENCRYPTION_SECRET_PATH (or ENCRYPTION_SECRET_FILE_PATH): required when DB_HOST "
            "is set (a generated dev secret is only used with the embedded database)"
        )
    if config.db_sslrootcert and not Path(config.db_sslrootcert).expanduser().is_file():
        r.problems.append(f"DB_SSLROOTCERT: no such file {config.db_sslrootcert}")
    return config


def _api_port(r: _Reader, default: int) -> int:
    """``PORT``, or ``SERVER_PORT`` (the operator guide's and env.example's
    name): the same setting, so two different values are a mistake to name."""
    before = len(r.problems)
    port = r.integer("PORT", default, minimum=0, maximum=65535)
    if r.text("SERVER_PORT") is None:
        return port
    server_port = r.integer("SERVER_PORT", port, minimum=0, maximum=65535)
    # Compare only two valid values: a bad one is named on its own already.
    valid = len(r.problems) == before
    if valid and r.text("PORT") is not None and server_port != port:
        r.problems.append(
            f"PORT={port} and SERVER_PORT={server_port} disagree: they are the same "
            "setting, set only one (or both to the same port)"
        )
    return server_port


def _secret_path(r: _Reader, default: Path | None) -> Path | None:
    """``ENCRYPTION_SECRET_PATH``, or ``ENCRYPTION_SECRET_FILE_PATH`` (the
    operator guide's .env name for the secret file): the same setting, as
    PORT and SERVER_PORT are. Without this, the guide's .env given to
    ``ksnode --env-file`` left the operator's secret unused and the node made
    and used a development secret of its own. Two different files named is a
    mistake to name, not a choice to make silently."""
    path = r.path("ENCRYPTION_SECRET_PATH", default)
    if r.raw("KSNODE_IN_CONTAINER") == "1":
        # In the image the name is the host file the compose file turns into
        # the secret mounted at ENCRYPTION_SECRET_PATH (docker/Dockerfile sets
        # both KSNODE_IN_CONTAINER and that path); .env hands it in as well.
        return path
    file_path = r.path("ENCRYPTION_SECRET_FILE_PATH")
    if file_path is None:
        return path
    if r.text("ENCRYPTION_SECRET_PATH") is None:
        return file_path
    if path is not None and path.absolute() != file_path.absolute():
        r.problems.append(
            f"ENCRYPTION_SECRET_PATH={path} and ENCRYPTION_SECRET_FILE_PATH={file_path} "
            "disagree: they are the same setting, set only one (or both to the same file)"
        )
    return path


def _absolute(path: Path | None) -> Path | None:
    return path.absolute() if path is not None else None


def child_environment(config: Config, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for programs started by ``ksnode up``: the current process
    environment plus the values ``up`` decided (embedded DB address, folders)."""
    env = dict(os.environ)
    env.update(
        {
            "KSNODE_HOME": str(config.home),
            "DUMP_DIR": str(config.effective_dump_dir),
            "LOG_DIR": str(config.effective_log_dir),
            "ENCRYPTION_SECRET_PATH": str(config.effective_secret_path),
            # Decided above (and, as root, replaced by the programs' private
            # copy): the guide's name for it, from the env file the programs
            # read too, must not name the original beside it. Empty is unset.
            "ENCRYPTION_SECRET_FILE_PATH": "",
            "KSNODE_PYTHON": sys.executable,
        }
    )
    if config.encryption_secret_previous_paths:
        env["ENCRYPTION_SECRET_PREVIOUS_PATHS"] = ",".join(
            str(path) for path in config.encryption_secret_previous_paths
        )
    if config.db_host is not None:
        env["DB_HOST"] = config.db_host
        env["DB_PORT"] = config.db_port_text
    if extra:
        env.update(extra)
    return env


def git_hash_from_environment() -> str | None:
    """A git hash baked into an image (``KSNODE_GIT_HASH``), if any."""
    value = os.environ.get("KSNODE_GIT_HASH", "").strip()
    return value or None
