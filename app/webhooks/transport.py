"""Sending one signed POST to a merchant's URL, safely.

Merchant URLs are an SSRF risk: a URL could point at our own network. So in production
(BARID_ENV=production) only `https` is accepted, and the host's addresses are resolved
and every one must be public: private, loopback, link-local, multicast, reserved and
unspecified addresses are refused, at registration and again at each delivery (DNS may
have changed since). The connection then goes to the address that was checked, not to a
second resolution of the name (no DNS rebinding); TLS still verifies the host name.
Outside production plain `http` is accepted, and loopback and private targets when
WEBHOOKS_ALLOW_LOOPBACK is on (development and tests).

Each attempt has a deadline (WEBHOOK_TIMEOUT seconds, 10 by default) for connecting,
sending and reading the answer; only the first bytes of the answer are read.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l

EXCERPT_BYTES = 1024
USER_AGENT = "Barid-Webhooks/1.0"


class UnsafeURL(ValueError):
    """The URL may not be called (scheme, host or address refused)."""

    def __init__(self, code: str, message: object) -> None:
        super().__init__(str(message))
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent on the request line
    addresses: tuple[str, ...]


@dataclass
class Outcome:
    status: int | None
    latency_ms: int
    excerpt: str
    error: str | None
    retry_after: int | None = None


def _policy() -> tuple[bool, bool]:
    cfg = current_app.config
    production = cfg.get("BARID_ENV") == "production"
    allow_private = (not production) and bool(cfg.get("WEBHOOKS_ALLOW_LOOPBACK", False))
    return production, allow_private


def _address_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a URL the policy's scheme rules allow.

    Raises UnsafeURL for something that is not an absolute http(s) URL, for http in
    production, and for credentials in the URL.
    """
    production, _ = _policy()
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("invalid_url", _l("This is not a valid web address.")) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("invalid_url",
                        _l("Give a full web address starting with https://."))
    if production and parts.scheme != "https":
        raise UnsafeURL("https_required", _l("Webhook addresses must use https://."))
    if parts.username or parts.password:
        raise UnsafeURL("invalid_url", _l("Do not put a user name or password in the address."))
    if any(c.isspace() for c in url.strip()):
        raise UnsafeURL("invalid_url", _l("This is not a valid web address."))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str) -> Target:
    """Parse `url`, resolve its host and check every address against the policy.

    Raises UnsafeURL when the scheme is refused, the host does not resolve, or any of
    its addresses is not a public one (unless the policy allows private targets).
    """
    scheme, host, port, path = parse_url(url)
    _, allow_private = _policy()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL("unresolvable_host", _l("This host name does not resolve.")) from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeURL("unresolvable_host", _l("This host name does not resolve."))
    if not allow_private:
        for addr in addresses:
            if _address_refused(ipaddress.ip_address(addr.split("%", 1)[0])):
                raise UnsafeURL("address_not_allowed",
                                _l("This address points into a private network, which "
                                   "webhooks may not call."))
    return Target(scheme, host, port, path, addresses)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, address: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, address: str, host: str, port: int, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self.host)


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(int(when.timestamp() - time.time()), 0)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST `body` to `url` within `timeout` seconds; never raises for network trouble.

    Raises UnsafeURL when the policy refuses the URL or its addresses now.
    """
    target = resolve(url)
    started = time.monotonic()
    deadline = started + timeout
    conn: http.client.HTTPConnection | None = None
    try:
        address = target.addresses[0]
        if target.scheme == "https":
            conn = _PinnedHTTPSConnection(address, target.host, target.port, timeout,
                                          ssl.create_default_context())
        else:
            conn = _PinnedHTTPConnection(address, target.host, target.port, timeout)
        conn.putrequest("POST", target.path, skip_accept_encoding=True)
        all_headers = {**headers, "user-agent": USER_AGENT,
                       "content-length": str(len(body))}
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        if conn.sock is not None:
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
        response = conn.getresponse()
        chunks = b""
        try:
            while len(chunks) < EXCERPT_BYTES and time.monotonic() < deadline:
                if conn.sock is not None:
                    conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
                part = response.read1(EXCERPT_BYTES - len(chunks))
                if not part:
                    break
                chunks += part
        except (TimeoutError, OSError, http.client.HTTPException):
            pass  # the status is what counts; a slow or broken body only shortens the excerpt
        latency = int((time.monotonic() - started) * 1000)
        return Outcome(status=response.status, latency_ms=latency,
                       excerpt=chunks.decode("utf-8", errors="replace"), error=None,
                       retry_after=_retry_after(response.getheader("Retry-After")))
    except TimeoutError:
        return Outcome(None, int((time.monotonic() - started) * 1000), "",
                       f"timed out after {timeout:g} s")
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return Outcome(None, int((time.monotonic() - started) * 1000), "",
                       f"{type(exc).__name__}: {exc}"[:300])
    finally:
        if conn is not None:
            conn.close()
