"""The reporter's one outbound call, a JSON POST, with the standard library.

``requests`` alone cost the reporter ~10 MiB of private memory, so this
module does with ``http.client`` what ``requests.Session().post(url,
json=..., headers=..., timeout=..., allow_redirects=False)`` did for it:

* the request: the URL's path and query (unsafe characters percent-encoded,
  the fragment dropped), ``Content-Type: application/json`` and the same
  JSON bytes as ``json=`` (``json.dumps(allow_nan=False)``, UTF-8); a
  ``user:password@`` in the URL becomes Basic auth and is not sent in the
  URL;
* redirects are never followed: ``http.client`` has no redirect handling at
  all, so a 3xx comes back as a status like any other answer, and our
  headers go to the configured host (or its proxy) only;
* proxies from the environment as ``requests`` read them: ``http_proxy``,
  ``https_proxy``, ``all_proxy`` and ``no_proxy`` (lower case first, then
  upper case; ``no_proxy`` takes host suffixes, ``*`` and, for IPv4
  hosts, CIDR ranges); an https URL goes through the proxy with CONNECT;
* TLS verified against ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``,
  else certifi's bundle (the system's CA store if certifi is missing); a
  directory is taken as a hashed CA directory, as ``requests`` did;
* the timeout bounds connecting and every read, as ``requests``' did, and
  also the status line and headers as a whole (a byte now and then does not
  keep the report waiting); the answer's body is read, at most
  MAX_BODY_BYTES and within the timeout, and discarded, and the connection
  is closed after every report.

Exceptions are raised as they come (``OSError`` and its subclasses,
``http.client.HTTPException``, ``ValueError`` for an unusable URL); their
messages are not meant for the log: the caller reports the class name only.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from shared.errors import ConfigurationFailure

MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "ksnode-reporter"
# What requests.utils.requote_uri leaves alone (it escapes the rest).
_SAFE_IN_URL = "!#$%&'()*+,/:;=?@[]~"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsupportedURL(ConfigurationFailure, ValueError):
    """The URL is not http(s) or names no host (the message names no URL)."""


class UnsupportedProxy(ConfigurationFailure, ValueError):
    """A proxy this client cannot speak to (SOCKS, or TLS to the proxy for an
    https URL), which ``requests`` (without PySocks) could not use either."""


class CABundleUnreadable(ConfigurationFailure, OSError):
    """``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` names no readable CA file."""


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    explicit_port: int | None
    netloc: str  # without user info, as the Host header and a proxy see it
    path: str  # path and query, what the request line carries
    auth: tuple[str, str] | None


def _basic(user: str, password: str) -> str:
    raw = f"{user}:{password}".encode("latin-1")
    return "Basic " + b64encode(raw).decode("ascii")


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise UnsupportedURL("only http and https URLs with a host are sent to")
    explicit_port = parts.port  # ValueError for a port that is no number
    auth = None
    if parts.password is not None:  # as requests: only with a password
        auth = (unquote(parts.username or ""), unquote(parts.password))
    path = quote(parts.path or "/", safe=_SAFE_IN_URL)
    if parts.query:
        path += "?" + quote(parts.query, safe=_SAFE_IN_URL)
    return _Target(
        scheme=scheme,
        host=parts.hostname,
        port=explicit_port or _DEFAULT_PORTS[scheme],
        explicit_port=explicit_port,
        netloc=parts.netloc.rpartition("@")[2],
        path=path,
        auth=auth,
    )


def _has_proxy_settings() -> bool:
    return any(name.lower().endswith("_proxy") for name in os.environ)


def _ipv4(host: str) -> int | None:
    """The address as a number if ``host`` is IPv4 (inet_aton, as requests)."""
    try:
        return int.from_bytes(socket.inet_aton(host), "big")
    except OSError:
        return None


def _in_cidr(address: int, entry: str) -> bool:
    """requests' is_valid_cidr + address_in_network: IPv4 and a /1../32 mask."""
    network_text, slash, bits_text = entry.partition("/")
    network = _ipv4(network_text)
    if not slash or network is None or not bits_text.isdigit():
        return False
    bits = int(bits_text)
    if not 1 <= bits <= 32:
        return False
    mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    return address & mask == network & mask


def _bypassed(target: _Target, proxies: Mapping[str, str]) -> bool:
    """requests.utils.should_bypass_proxies for the environment's no_proxy."""
    # What requests calls last (urllib's proxy_bypass is this one on Linux);
    # typeshed leaves it out.
    from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
    if no_proxy:
        entries = [entry for entry in no_proxy.replace(" ", "").split(",") if entry]
        address = _ipv4(target.host)
        if address is not None:
            for entry in entries:
                if _in_cidr(address, entry) or target.host == entry:
                    return True
        else:
            with_port = target.host
            if target.explicit_port:
                with_port += f":{target.explicit_port}"
            for entry in entries:
                entry = entry.lstrip(".")
                if entry in (target.host, with_port):
                    return True
                if target.host.endswith("." + entry) or with_port.endswith("." + entry):
                    return True
    return bool(proxy_bypass_environment(target.host, dict(proxies)))


def _proxy_for(target: _Target) -> str | None:
    if not _has_proxy_settings():
        return None  # urllib.request (its import costs ~1 MiB) only when needed
    from urllib.request import getproxies_environment

    proxies = getproxies_environment()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy or _bypassed(target, proxies):
        return None
    return proxy


class OkoClient:
    """Sends one JSON POST at a time; holds only the TLS context per CA
    bundle (no connection is kept between reports)."""

    def __init__(self) -> None:
        self._tls: dict[str | None, ssl.SSLContext] = {}

    def tls_context(self) -> ssl.SSLContext:
        cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if not cafile:
            try:
                import certifi
            except ImportError:
                cafile = None  # the system's CA store
            else:
                cafile = certifi.where()
        context = self._tls.get(cafile)
        if context is None:
            try:
                if cafile is None:
                    context = ssl.create_default_context()
                elif os.path.isdir(cafile):
                    context = ssl.create_default_context(capath=cafile)
                else:
                    context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise CABundleUnreadable(f"cannot load the CA bundle {cafile}") from exc
            context.minimum_version = ssl.TLSVersion.TLSv1_2  # as urllib3
            self._tls[cafile] = context
        return context

    def _connection(
        self, target: _Target, timeout: float, headers: dict[str, str]
    ) -> tuple[http.client.HTTPConnection, str]:
        """The connection to open and the request target to send on it."""
        proxy = _proxy_for(target)
        if proxy is None:
            return self._connect_to(target.scheme, target.host, target.port, timeout), target.path
        if "://" not in proxy:
            proxy = "http://" + proxy  # as requests' prepend_scheme_if_needed
        parts = urlsplit(proxy)
        proxy_scheme = parts.scheme.lower()
        if proxy_scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise UnsupportedProxy("only http:// and https:// proxies are supported")
        proxy_port = parts.port or _DEFAULT_PORTS[proxy_scheme]
        proxy_auth = {}
        if parts.username:
            proxy_auth["Proxy-Authorization"] = _basic(
                unquote(parts.username), unquote(parts.password or "")
            )
        if target.scheme == "http":
            # A plain request to the proxy naming the absolute URL (no user info).
            headers.update(proxy_auth)
            connection = self._connect_to(proxy_scheme, parts.hostname, proxy_port, timeout)
            return connection, f"http://{target.netloc}{target.path}"
        if proxy_scheme != "http":
            raise UnsupportedProxy("TLS to the proxy is not supported for an https URL")
        # https through the proxy: CONNECT, then TLS with the target itself.
        connection = http.client.HTTPSConnection(
            parts.hostname, proxy_port, timeout=timeout, context=self.tls_context()
        )
        connection.set_tunnel(target.host, target.port, headers=proxy_auth)
        return connection, target.path

    def _connect_to(
        self, scheme: str, host: str, port: int, timeout: float
    ) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self.tls_context()
            )
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def post_json(
        self, url: str, document: Any, headers: Mapping[str, str], timeout: float
    ) -> Answer:
        target = _target(url)
        body = json.dumps(document, allow_nan=False).encode("utf-8")
        sent = {
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Connection": "close",
        }
        if target.auth is not None:
            sent["Authorization"] = _basic(*target.auth)
        sent.update(headers)
        sent["Content-Type"] = "application/json"
        sent["Content-Length"] = str(len(body))
        connection, request_target = self._connection(target, timeout, sent)
        try:
            connection.request("POST", request_target, body=body, headers=sent)
            # getresponse() may hand the socket to the response and drop it
            # from the connection: keep it to bound the body's reads.
            sock = connection.sock
            response = _response_within(connection, sock, timeout)
            answer = Answer(response.status, response.reason)
            _drain(sock, response, time.monotonic() + timeout)
            return answer
        finally:
            connection.close()


def _response_within(
    connection: http.client.HTTPConnection, sock: socket.socket | None, timeout: float
) -> http.client.HTTPResponse:
    """``connection.getresponse()``, over by ``timeout``: the socket's own
    timeout bounds each read only, and http.client reads the status line
    and up to 100 header lines of 64 KiB each, so a target (or a proxy)
    sending a byte now and then would hold the reporter, silently, for days.
    At the deadline the socket is shut down, which ends the blocked read."""
    if sock is None:
        return connection.getresponse()
    expired = threading.Event()

    def cut() -> None:
        # Through a descriptor of our own, under any TLS wrapper: the TLS
        # object is the reading thread's, the kernel's socket is shared.
        expired.set()
        try:
            raw = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:  # already closed: nothing is waiting on it
            return
        try:
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            raw.close()

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        return connection.getresponse()
    except (OSError, http.client.HTTPException, ValueError):
        if expired.is_set():
            # Reported like the socket's own timeout (the class name is logged).
            raise TimeoutError("no answer within the timeout") from None
        raise
    finally:
        timer.cancel()


def _drain(sock: socket.socket | None, response: http.client.HTTPResponse, deadline: float) -> None:
    """Read and discard at most MAX_BODY_BYTES of the answer, within the
    deadline. The status is already known: a body that fails is ignored."""
    left = MAX_BODY_BYTES
    try:
        while left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if sock is not None:
                sock.settimeout(remaining)
            chunk = response.read1(min(left, 16384))
            if not chunk:
                return
            left -= len(chunk)
    except (OSError, http.client.HTTPException, ValueError):
        return
    finally:
        response.close()
