"""Believe ``X-Forwarded-For`` and ``-Proto`` from the proxies ``--forwarded-allow-ips`` names.

uvicorn applies these headers itself, from ``127.0.0.1`` unless told otherwise;
hypercorn, granian and daphne ignore them unless configured, each in its own
way. ``asgishift serve`` turns the servers' own handling off and applies
:class:`ProxyHeadersMiddleware` on every server instead, so the client address
and scheme an app sees behind a reverse proxy (nginx's ``proxy_set_header
X-Forwarded-For $proxy_add_x_forwarded_for``) are the same on all four.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from asgishift._types import ASGIApp, Receive, Scope, Send

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Scheme of a WebSocket scope for the ``X-Forwarded-Proto`` of its HTTP upgrade.
_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose ``X-Forwarded-*`` headers are believed.

    :param networks: the trusted addresses and networks.
    :param everyone: ``*`` was given: every peer is trusted.
    """

    networks: tuple[_Network, ...]
    everyone: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """Parse ``--forwarded-allow-ips``: comma-separated addresses and networks, or ``*``.

        :param text: e.g. ``"127.0.0.1,10.0.0.0/8,::1"``; ``""`` trusts no one.
        :raise ValueError: naming an item that is neither an IP address nor a network.
        """
        networks: list[_Network] = []
        everyone = False
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            if item == "*":
                everyone = True
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"expected IP addresses or networks separated by commas (e.g. "
                    f"127.0.0.1,10.0.0.0/8) or *, got {item!r}"
                ) from None
        return cls(tuple(networks), everyone)

    def __contains__(self, host: object) -> bool:
        """Return whether the peer address ``host`` (a string) is trusted; an IPv4-mapped
        IPv6 address (``::ffff:127.0.0.1``) counts as its IPv4 address."""
        if self.everyone:
            return True
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        # An IPv4 client of a dual-stack socket (--host ::) appears as ::ffff:a.b.c.d.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        # ``in`` raises TypeError across IP versions.
        return any(
            address.version == network.version and address in network for network in self.networks
        )


def check_forwarded_allow_ips(value: object) -> None:
    """Check a ``--forwarded-allow-ips`` value (see :meth:`TrustedProxies.parse`).

    :raise ValueError: when it is not a string of addresses, networks or ``*``.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be a string such as 127.0.0.1, got {value!r}")
    TrustedProxies.parse(value)


def _header_items(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Return the comma-separated items of every ``name`` header, in order."""
    items: list[str] = []
    for key, value in headers:
        if key.lower() == name:
            items.extend(part.strip() for part in value.decode("latin-1").split(","))
    return [item for item in items if item]


class ProxyHeadersMiddleware:
    """Set ``scope["client"]`` and ``scope["scheme"]`` from a trusted proxy's headers.

    Only when the connection's peer (``scope["client"]``) is trusted:

    - ``X-Forwarded-Proto``: its last item, when ``http``, ``https``, ``ws`` or
      ``wss``, becomes the scheme (``https`` gives ``wss`` for a WebSocket scope);
    - ``X-Forwarded-For``: read from the right, the first address that is not
      itself a trusted proxy becomes the client, port ``0`` (all trusted: the
      leftmost).

    Other peers' headers are left in ``headers`` and ignored. ``lifespan``
    scopes pass through unchanged (ASGI HTTP and WebSocket scopes, ``client``
    and ``scheme`` keys).

    :param app: the ASGI 3 app.
    :param trusted: the peers believed (``--forwarded-allow-ips``).
    """

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    def _client(self, forwarded: list[str]) -> str | None:
        for host in reversed(forwarded):
            if host not in self.trusted:
                return host
        return forwarded[0] if forwarded else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite HTTP and WebSocket scopes from a trusted peer, then call the app."""
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = client[0] if client else None
            if peer in self.trusted:
                headers = list(scope.get("headers", ()))
                proto = _header_items(headers, b"x-forwarded-proto")
                forwarded = _header_items(headers, b"x-forwarded-for")
                if proto or forwarded:
                    scope = dict(scope)
                scheme = proto[-1].lower() if proto else ""
                if scheme in _WS_SCHEME:
                    if scope["type"] == "websocket":
                        scheme = _WS_SCHEME[scheme]
                    scope["scheme"] = scheme
                host = self._client(forwarded)
                if host is not None:
                    scope["client"] = (host, 0)
        await self.app(scope, receive, send)


def with_proxy_headers(app: ASGIApp, forwarded_allow_ips: str) -> ASGIApp:
    """Return ``app`` behind :class:`ProxyHeadersMiddleware`, or ``app`` itself when
    ``forwarded_allow_ips`` trusts no one.

    Applied where a server runs the app (``asgishift serve`` and its worker
    processes), like a server's own proxy-header handling; not by
    :func:`~asgishift.serve.build_app`.

    :param app: the ASGI 3 app.
    :param forwarded_allow_ips: ``--forwarded-allow-ips`` (see :meth:`TrustedProxies.parse`).
    :raise ValueError: for an item that is not an address, a network or ``*``.
    """
    trusted = TrustedProxies.parse(forwarded_allow_ips)
    if not trusted.everyone and not trusted.networks:
        return app
    return ProxyHeadersMiddleware(app, trusted)


__all__ = [
    "ProxyHeadersMiddleware",
    "TrustedProxies",
    "check_forwarded_allow_ips",
    "with_proxy_headers",
]
