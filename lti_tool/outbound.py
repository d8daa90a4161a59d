"""The one guarded HTTP client every outbound call of the tool goes through.

LMS services (tokens, AGS, NRPS, Moodle Web Services, Canvas REST, paging, passback), platform
key sets and Dynamic Registration all call `OutboundClient.request`, which enforces:

- **hosts**: a client bound to a registration (`for_hosts`) reaches only that registration's
  recorded hosts (`host` = default port of the scheme, or `host:port`); anything else is refused
  and logged before a connection is made;
- **addresses**: the host name is resolved and EVERY address it resolves to must be public
  (not loopback, private, link-local, shared, multicast, reserved or unspecified, including the
  IPv4 forms embedded in IPv6: mapped, compatible, 6to4, NAT64, Teredo), unless
  `LTI_TOOL_OUTBOUND_ALLOW` lists it. Spellings such as `127.1`, `2130706433`, `0x7f000001`
  or `0177.0.0.1` are resolved by the system's resolver first, so they meet the same check;
- **pinning**: the connection goes to the address that was checked (no second DNS lookup that
  a rebinding name could answer differently); TLS still sends SNI for, and verifies the
  certificate of, the host name in the URL;
- **schemes**: HTTPS, or plain HTTP only to an address the allow-list names;
- **redirects**: followed for GET only, at most 3, to the same host and port, never from HTTPS
  to HTTP; other methods get the 3xx back;
- **size and time**: the body is streamed and refused past `max_bytes` (default 32 MiB); one
  exchange (connect, redirects, headers, body) has a total deadline (default 30 s), checked
  between reads, each read waiting at most what is left of it.

Errors say what was refused and why; they never quote a reply's body.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from lti_tool.errors import ToolError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_DEADLINE = 30.0
CONNECT_TIMEOUT = 5.0
MAX_REDIRECTS = 3
CHUNK = 64 * 1024
# An error reply is only logged (truncated): past this much it is cut, not refused, so a huge
# refusal still shows its status.
ERROR_BODY_BYTES = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Not globally reachable per IANA's special-purpose registries, but public to Python 3.11.
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24", "192.88.99.0/24", "3fff::/20", "5f00::/16"))
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?)+$")


class OutboundError(ToolError):
    """An outbound call did not happen or did not complete within the rules."""

    status = 502
    code = "outbound_error"


class OutboundRefused(OutboundError):
    """The tool refused to make the call (host not recorded, address not public, scheme...)."""

    code = "outbound_refused"


class OutboundTooLarge(OutboundError):
    code = "outbound_too_large"


class OutboundTimeout(OutboundError):
    code = "outbound_timeout"


class AllowListError(ValueError):
    """LTI_TOOL_OUTBOUND_ALLOW holds an entry the tool cannot read."""


# --- addresses ---------------------------------------------------------------------------------


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress | str) -> str | None:
    """Why an outbound call must not reach `ip` (None when it is a public unicast address)."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%", 1)[0])
    inner = embedded_ipv4(ip)
    if inner is not None:
        problem = address_problem(inner)
        if problem:
            return f"{problem} (inside the IPv6 address {ip})"
        if ip in _IPV4_COMPATIBLE:
            return f"an IPv4-compatible IPv6 address ({ip}), which is deprecated"
        return None
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip in _SHARED if ip.version == 4 else False, "a shared (carrier-grade NAT) address"),
        (ip.version == 6 and ip in _NAT64_LOCAL, "a local-use NAT64 address"),
        (ip.version == 6 and ip.teredo is not None, "a Teredo address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (any(ip.version == n.version and ip in n for n in _NOT_GLOBAL),
         "a special-purpose address"),
        (not ip.is_global, "not a public address"),
    )
    for hit, words in checks:
        if hit:
            return f"{words} ({ip})"
    return None


def normal_ip(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 addresses compare as the IPv4 address they carry."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


# --- the allow-list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowEntry:
    """`host` (any port), `host:port`, an IP or a CIDR (any port), `[v6]:port`, `ip:port`."""

    text: str
    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def permits(self, hostname: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return normal_host(hostname) == self.host
        assert self.network is not None
        ip = normal_ip(ip)
        return ip.version == self.network.version and ip in self.network


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AllowListError(f"LTI_TOOL_OUTBOUND_ALLOW entry {entry!r}: the port must be a "
                             "number from 1 to 65535.")
    return int(text)


def parse_allow_entry(raw: str) -> AllowEntry:
    entry = raw.strip()
    host_part, port = entry, None
    if entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            raise AllowListError(f"LTI_TOOL_OUTBOUND_ALLOW entry {entry!r}: missing ']'.")
        host_part, rest = entry[1:close], entry[close + 1:]
        if rest:
            if not rest.startswith(":"):
                raise AllowListError(f"LTI_TOOL_OUTBOUND_ALLOW entry {entry!r}: expected "
                                     "[IPv6]:port.")
            port = _port(rest[1:], entry)
    elif entry.count(":") == 1:
        host_part, port_text = entry.split(":")
        port = _port(port_text, entry)
    if "/" in host_part:
        if port is not None:
            raise AllowListError(f"LTI_TOOL_OUTBOUND_ALLOW entry {entry!r}: a CIDR range "
                                 "takes no port.")
        try:
            return AllowEntry(entry, network=ipaddress.ip_network(host_part, strict=False))
        except ValueError as exc:
            raise AllowListError(f"LTI_TOOL_OUTBOUND_ALLOW entry {entry!r} is not a CIDR range "
                                 f"({exc}).") from exc
    try:
        ip = ipaddress.ip_address(host_part)
    except ValueError:
        pass
    else:
        return AllowEntry(entry, network=ipaddress.ip_network(normal_ip(ip)), port=port)
    if entry.startswith("[") or not _HOSTNAME.match(host_part):
        raise AllowListError(f"LTI_TOOL_OUTBOUND_ALLOW entry {entry!r} is not a host name, an "
                             "IP address, a CIDR range or host:port.")
    return AllowEntry(entry, host=normal_host(host_part), port=port)


@dataclass(frozen=True)
class AllowList:
    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> AllowList:
        if not text:
            return cls()
        items = text.split(",") if isinstance(text, str) else list(text)
        return cls(tuple(parse_allow_entry(item) for item in items if item.strip()))

    def permits(self, hostname: str, ip: IPAddress, port: int) -> bool:
        return any(entry.permits(hostname, ip, port) for entry in self.entries)


# --- recorded hosts ------------------------------------------------------------------------------


def normal_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


@functools.lru_cache(maxsize=4096)  # pure; a launch asks it for the same few URLs many times
def host_key(url: str) -> str:
    """`host` for the scheme's default port, `host:port` otherwise; IPv6 in brackets."""
    parts = urlsplit(url)
    host = normal_host(parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == DEFAULT_PORTS.get(parts.scheme):
        return host
    return f"{host}:{port}"


def parse_host_entry(value: str) -> str:
    """An operator's `--lms-host`: `host`, `host:port` or a URL; normalised like `host_key`."""
    text = value.strip()
    if not text:
        raise ValueError("an LMS host must not be empty")
    url = text if "://" in text else "https://" + text
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a host or host:port") from exc
    host = parts.hostname or ""
    if not host or parts.username or parts.password or (
        not _HOSTNAME.match(host) and not _is_ip(host)
    ) or (parts.path not in ("", "/") and "://" not in text):
        raise ValueError(f"{value!r} is not a host or host:port")
    return host_key(url)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def hosts_of(urls: Iterable[str | None], extra: Iterable[str] = ()) -> list[str]:
    """The recorded-host list of a registration: the hosts of its URLs plus `extra`."""
    found = {host_key(url) for url in urls if url and urlsplit(url).hostname}
    found.update(parse_host_entry(h) for h in extra if h)
    return sorted(found)


def token_endpoint_key(url: str | None) -> str | None:
    """A token endpoint as compared for the (token endpoint, client_id) rule: scheme, host
    (lower case, default port dropped) and path without a trailing slash; no query."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        key = host_key(url.strip())
    except ValueError:
        return None
    return f"{parts.scheme.lower()}://{key}{parts.path.rstrip('/')}"[:1000]


def url_on_hosts(url: str, hosts: Iterable[str]) -> bool:
    """Is `url` on one of `hosts` (as `host_key` spells them)?"""
    try:
        key = host_key(url)
    except ValueError:
        return False
    return key in set(hosts)


# --- the guard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundPolicy:
    allow: AllowList = field(default_factory=AllowList)
    max_bytes: int = DEFAULT_MAX_BYTES
    deadline: float = DEFAULT_DEADLINE
    connect_timeout: float = CONNECT_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundPolicy:
        return cls(allow=AllowList.parse(settings.outbound_allow),
                   max_bytes=settings.outbound_max_bytes,
                   deadline=float(settings.outbound_timeout_seconds))


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise OutboundRefused(f"The host {host!r} could not be resolved.") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise OutboundRefused(f"The host {host!r} has no address.")
    return addresses


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    ip: IPAddress


def check_target(url: str, policy: OutboundPolicy) -> Target:
    """Resolve `url`'s host and check every address; the address to connect to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused("The URL is not well-formed.") from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise OutboundRefused(f"Only http(s) URLs are called, not {url[:100]!r}.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("URLs with credentials in them are not called.")
    host = parts.hostname
    port = port or DEFAULT_PORTS[parts.scheme]
    addresses = resolve(host, port)
    for ip in addresses:
        if policy.allow.permits(host, ip, port):
            continue
        problem = address_problem(ip)
        if problem:
            raise OutboundRefused(f"{host_key(url)} resolves to {problem}; outbound calls reach "
                                  "only public addresses unless LTI_TOOL_OUTBOUND_ALLOW lists "
                                  "it.")
        if parts.scheme == "http":
            raise OutboundRefused(f"Plain HTTP to {host_key(url)} is refused: use HTTPS.")
    return Target(parts.scheme, host, port, addresses[0])


class PinnedAdapter(HTTPAdapter):
    """Connects to the address `check_target` approved, never to a second lookup's answer."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> Any:
        target = check_target(request.url or "", self.policy)
        host_params, key_attributes = self.build_connection_pool_key_attributes(
            request, verify, cert)
        # urllib3 takes the TLS name as pool keywords its stubs' TypedDict does not list
        pool_kwargs: dict[str, Any] = dict(key_attributes)
        host_params["host"] = str(target.ip)
        if target.scheme == "https":
            pool_kwargs["server_hostname"] = target.host
            pool_kwargs["assert_hostname"] = target.host
        name = f"[{target.host}]" if ":" in target.host else target.host
        default = DEFAULT_PORTS[target.scheme]
        request.headers["Host"] = name if target.port == default else f"{name}:{target.port}"
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def _summary(url: str) -> str:
    """Scheme, host and path: never the query (web-service tokens travel there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def summary(url: str) -> str:
    try:
        return _summary(url)
    except ValueError:
        return "(malformed URL)"


class OutboundClient:
    """Guarded HTTP; `for_hosts` gives a view limited to one registration's recorded hosts."""

    def __init__(self, policy: OutboundPolicy | None = None, *,
                 hosts: Iterable[str] | None = None, session: requests.Session | None = None,
                 user_agent: str = "lti-microcredentials/0.1") -> None:
        self.policy = policy or OutboundPolicy()
        self.hosts = frozenset(hosts) if hosts is not None else None
        if session is None:
            session = requests.Session()
            session.trust_env = False  # a proxy from the environment would undo the pinning
            adapter = PinnedAdapter(self.policy)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers["User-Agent"] = user_agent
        self.session = session
        self._lock = threading.Lock()

    def for_hosts(self, hosts: Iterable[str]) -> OutboundClient:
        return OutboundClient(self.policy, hosts=hosts, session=self.session)

    def check_host(self, url: str, what: str = "") -> None:
        """Refuse (and log) a URL that is not on this client's recorded hosts."""
        if self.hosts is None or url_on_hosts(url, self.hosts):
            return
        where = summary(url)
        log.warning("outbound call refused: %s%s is not on the registration's hosts %s",
                    f"{what}: " if what else "", where, sorted(self.hosts))
        raise OutboundRefused(
            f"{what + ' ' if what else ''}{host_key(url) if urlsplit(url).hostname else where} "
            "is not one of the hosts recorded for this platform registration; the tool does "
            "not call it. The operator can add an LMS host (lti-tool platform add --lms-host).")

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                data: Any = None, json: Any = None, max_bytes: int | None = None,
                deadline_at: float | None = None, what: str = "",
                follow_redirects: bool = True, https_redirects_only: bool = False,
                read_timeout: float | None = None) -> requests.Response:
        """One exchange, bounded; the returned response's body is already read.

        Past the deadline (the policy's, or `deadline_at` when sooner) OutboundTimeout; a single
        read waiting longer than `read_timeout` (default: what is left of the deadline)
        requests.Timeout, like a connection that stalls before its headers."""
        limit = self.policy.max_bytes if max_bytes is None else max_bytes
        ends = time.monotonic() + self.policy.deadline
        if deadline_at is not None:
            ends = min(ends, deadline_at)
        current = url
        redirects = 0
        while True:
            self.check_host(current, what)
            remaining = ends - time.monotonic()
            if remaining <= 0:
                raise OutboundTimeout(f"{summary(url)} did not answer in time.")
            try:
                response = self.session.request(
                    method, current, headers=dict(headers or {}), data=data, json=json,
                    stream=True, allow_redirects=False,
                    timeout=(min(self.policy.connect_timeout, remaining),
                             min(read_timeout or remaining, remaining)))
            except OutboundRefused as exc:
                log.warning("outbound call refused: %s: %s", summary(current), exc.message)
                raise
            if (follow_redirects and method.upper() in ("GET", "HEAD")
                    and response.status_code in REDIRECT_STATUSES
                    and response.headers.get("Location")):
                location = urljoin(current, response.headers["Location"])
                response.close()
                redirects += 1
                self._check_redirect(current, location, redirects, https_redirects_only)
                current = location
                continue
            self._read(response, limit, ends, current)
            return response

    def _check_redirect(self, current: str, location: str, count: int,
                        https_only: bool) -> None:
        problem = None
        if count > MAX_REDIRECTS:
            problem = f"more than {MAX_REDIRECTS} redirects"
        elif urlsplit(location).scheme not in DEFAULT_PORTS:
            problem = "a redirect to a URL that is not http(s)"
        elif host_key(location) != host_key(current) or (
                urlsplit(location).hostname or "").lower() != (
                urlsplit(current).hostname or "").lower():
            problem = f"a redirect to another host ({host_key(location)})"
        elif urlsplit(location).scheme != "https" and (
                https_only or urlsplit(current).scheme == "https"):
            problem = "a redirect to plain HTTP"
        if problem:
            log.warning("outbound call refused: %s answered with %s", summary(current),
                        problem)
            raise OutboundRefused(f"{summary(current)} answered with {problem}; the tool does "
                                  "not follow it.")

    @staticmethod
    def _read(response: requests.Response, limit: int, ends: float, url: str) -> None:
        truncate = response.status_code >= 400
        if truncate:
            limit = min(limit, ERROR_BODY_BYTES)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit and not truncate:
            response.close()
            raise OutboundTooLarge(f"The reply of {summary(url)} is larger than {limit} bytes.")
        body = bytearray()
        try:
            while True:
                if time.monotonic() > ends:
                    raise OutboundTimeout(f"The reply of {summary(url)} did not arrive within "
                                          "the time allowed for one call.")
                chunk = response.raw.read1(CHUNK, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > limit and truncate:
                    del body[limit:]
                    break
                if len(body) > limit:
                    raise OutboundTooLarge(f"The reply of {summary(url)} is larger than "
                                           f"{limit} bytes.")
        except (TimeoutError, urllib3.exceptions.ReadTimeoutError) as exc:
            # One read waited its whole timeout: the same error as a stall before the headers.
            raise requests.ReadTimeout(f"reading {summary(url)}: the server stopped sending"
                                       ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(f"reading {summary(url)}: {type(exc).__name__}") \
                from exc
        finally:
            response.close()
        response._content = bytes(body)
        response._content_consumed = True  # type: ignore[attr-defined]  # requests' own flag


def log_error_body(what: str, response: requests.Response, limit: int = 500) -> None:
    """An LMS's error reply goes to the log (truncated), never to a page or a CLI message."""
    try:
        text = response.content[:limit].decode("utf-8", "replace")
    except Exception:
        text = ""
    log.warning("%s: HTTP %s from %s: %s", what, response.status_code,
                summary(response.url or ""), text.replace("\n", " ").strip())


_CLIENTS: dict[OutboundPolicy, OutboundClient] = {}
_CLIENTS_LOCK = threading.Lock()


def client_for(settings: Any) -> OutboundClient:
    """The process's client for these settings (shares connection pools)."""
    policy = OutboundPolicy.from_settings(settings)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(policy)
        if client is None:
            client = _CLIENTS[policy] = OutboundClient(policy)
        return client
