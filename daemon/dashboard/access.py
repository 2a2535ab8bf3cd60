"""Who may use the dashboard: the Host it is reached by, a secret token, and where a command comes from.

- Host allow-list (against DNS rebinding): a page on evil.example whose name is made to resolve to 127.0.0.1 still
  sends `Host: evil.example`; only localhost names, IP literals (a rebinding attack cannot produce one) and the names
  given with --allow-host are served.
- A token per launch (or from --auth-file): the printed URL carries `?token=...` once; the page then lives on a
  cookie (HttpOnly, SameSite=Strict). Scripts send `Authorization: Bearer <token>`.
- A POST that says where it comes from (`Origin`, `Sec-Fetch-Site`) must come from this dashboard's own page.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from neuromusic.models.core.errors import ConfigError

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
MIN_TOKEN_LENGTH = 16


def split_host(header: str) -> str | None:
    """'Example.org:8050' -> 'example.org', '[::1]:8050' -> '::1'; None for something that is not a host[:port]."""
    if not header or len(header) > 255 or not header.isascii() or not header.isprintable():
        return None
    if header.startswith("["):
        inside, bracket, rest = header[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return inside.lower()
    name, colon, port = header.partition(":")
    if colon and not port.isdigit():
        return None
    if not name or any(c in name for c in " /\\@?#"):
        return None
    return name.lower().rstrip(".")


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Access:
    token: str
    allowed_hosts: frozenset[str]  # lower-case names besides the local ones; IP literals are always served
    cookie: str  # the cookie's name: one per port, so two dashboards on one machine keep their own

    @classmethod
    def create(cls, port: int, hosts: Iterable[str] = (), token: str | None = None) -> Access:
        names = {h.strip().lower().rstrip(".") for h in hosts if h.strip()}
        names.add(socket.gethostname().lower())
        return cls(token or secrets.token_urlsafe(24), frozenset(names | LOCAL_NAMES), f"neuromusic_dashboard_{port}")

    def host_allowed(self, header: str | None) -> bool:
        name = split_host(header or "")
        return name is not None and (name in self.allowed_hosts or is_ip_literal(name))

    def token_matches(self, offered: str | None) -> bool:
        if not offered or len(offered) > 512:
            return False
        return hmac.compare_digest(offered.encode("utf-8", "replace"), self.token.encode())

    def authorized(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        bearer = headers.get("Authorization", "")
        if bearer[:7].lower() == "bearer ":
            return self.token_matches(bearer[7:].strip())
        return self.token_matches(cookies.get(self.cookie))

    @staticmethod
    def same_origin(headers: Mapping[str, str]) -> bool:
        """A browser names the page a request comes from; it must be ours. A client that names none (curl, a
        script with the token) is let through: only browsers carry someone else's cookies."""
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = headers.get("Origin")
        if origin is None:
            return True
        host = headers.get("Host", "")
        return origin in (f"http://{host}", f"https://{host}")


def read_token_file(path: Path) -> str:
    """The token kept in a file (first line), so a service keeps one URL across restarts."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--auth-file {path}: cannot read it ({error.__class__.__name__})") from None
    token = lines[0].strip() if lines else ""
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(
            f"--auth-file {path}: the first line must be a token of at least {MIN_TOKEN_LENGTH} printable ASCII "
            "characters without spaces (e.g. from `python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )
    return token
