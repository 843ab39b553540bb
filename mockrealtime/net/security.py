"""What guards the surface: the admin API's token, Host and Origin checks, the WebSocket's Origin
policy, and logs that never show a key.

Theory of operation
-------------------
The server is a test double, usually on loopback, but what it shows is not harmless: the admin API
hands back what clients said (instructions, tool arguments) and lets a caller pick the next cassette
or wipe the journals. Two kinds of caller must be kept out:

* **Another machine.** Beyond loopback (``0.0.0.0``, the container) the admin API needs a token;
  :meth:`mockrealtime.config.ServerConfig.check` refuses to start without one, saying how to set it.
  With a token, every admin request must carry ``Authorization: Bearer <token>`` (compared in
  constant time); nothing else is asked of it.
* **A web page in the developer's browser.** Any page can make the browser send a "simple" request
  (a ``text/plain`` POST) to ``http://127.0.0.1:8080``, and DNS rebinding can make a page's own
  origin resolve to loopback. So, without a token, admin requests must name a loopback ``Host``
  (rebinding shows the attacker's name there), and an admin request that carries an ``Origin``
  (browsers send one on every cross-site POST; programs send none) must come from an allowed origin.
  Browsers' ``Sec-Fetch-Site: cross-site`` is refused likewise.

The WebSocket is different: browser apps open it on purpose (the Realtime API's browser recipe
offers ``openai-insecure-api-key.<key>`` as a subprotocol). The policy: no ``Origin`` (SDKs,
servers) or an origin on a loopback host (``http://localhost:3000``, any port) is accepted; any
other origin needs ``allowed_origins`` (``*`` for any). A hostile page elsewhere therefore cannot
replay the cassettes into itself or fill the journal.

Logs: aiohttp warns with the offered subprotocols when none is chosen, key included. A filter on
aiohttp's and mockrealtime's loggers masks what :func:`mockrealtime.core.redaction.mask_secrets`
flags, in the message and in a formatted traceback.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from mockrealtime.config import ServerConfig
from mockrealtime.core.redaction import mask_secrets

ADMIN_PREFIX = "/__admin"

# -- logs ----------------------------------------------------------------------------------------


class SecretLogFilter(logging.Filter):
    """Masks key-shaped text in a record's message and traceback; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(_FORMATTER.formatException(record.exc_info))
        return True


_FORMATTER = logging.Formatter()
_FILTER = SecretLogFilter()
#: A logger's filters see only records logged on it, not on its children: every logger is named.
LOGGERS = (
    "aiohttp.websocket", "aiohttp.server", "aiohttp.web", "aiohttp.access", "aiohttp.client", "aiohttp.internal",
    "mockrealtime", "mockrealtime.record", "mockrealtime.testing.episodes",
)


def install_log_scrubbing(handlers: bool = False) -> None:
    """Attach the filter to the loggers above (idempotent); ``handlers``: to the root's handlers too
    (the CLI, which owns them), so records of any logger are covered."""
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in LOGGERS]
    if handlers:
        targets += logging.getLogger().handlers
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)


# -- hosts and origins ------------------------------------------------------------------------------


def _loopback_name(host: str | None) -> bool:
    if not host:
        return False
    host = host.lower()
    if host.startswith("["):  # [::1]:8080
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_origins(config: ServerConfig) -> frozenset[str]:
    raw = config.allowed_origins or ""
    return frozenset(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())


def origin_allowed(origin: str | None, config: ServerConfig) -> bool:
    """The WebSocket's policy: no Origin, a loopback page, or one of ``allowed_origins``."""
    if origin is None:
        return True
    allowed = _allowed_origins(config)
    if "*" in allowed or origin.rstrip("/").lower() in allowed:
        return True
    try:
        parts = urlsplit(origin)
        hostname = parts.hostname
    except ValueError:  # "http://[::1" and the like: not an origin a browser sends
        return False
    return parts.scheme in ("http", "https") and _loopback_name(hostname)


def refuse_origin(request: web.Request, config: ServerConfig) -> web.Response | None:
    """A 403 for a WebSocket upgrade from a page the policy does not allow, else None."""
    origin = request.headers.get("Origin")
    if origin_allowed(origin, config):
        return None
    return _refusal(
        403, "origin_not_allowed",
        f"pages from {origin} may not open this WebSocket; allow them with --allowed-origin {origin} "
        f"(MOCKREALTIME_ALLOWED_ORIGINS)",
    )


def admin_refusal(request: web.Request, config: ServerConfig) -> web.Response | None:
    """Why this admin request is refused (a JSON response), or None to let it through."""
    token = config.admin_token
    if token:
        presented = request.headers.get("Authorization", "")
        scheme, _, value = presented.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            return _refusal(
                401, "admin_token_required",
                "the admin API needs the token the server was started with: 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="mockrealtime admin"'},
            )
    elif not _loopback_name(request.headers.get("Host")):
        return _refusal(
            403, "host_not_allowed",
            f"Host {request.headers.get('Host')!r} is not a loopback name; without --admin-token the admin "
            "API answers only requests to localhost or 127.0.0.1 (a guard against DNS rebinding)",
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/").lower() not in _allowed_origins(config) and "*" not in _allowed_origins(config):
        return _refusal(
            403, "origin_not_allowed",
            f"the admin API does not answer web pages (Origin {origin}); allow one with --allowed-origin",
        )
    if request.headers.get("Sec-Fetch-Site") == "cross-site" and origin is None:
        return _refusal(403, "origin_not_allowed", "the admin API does not answer cross-site requests")
    return None


def _refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_guard(config: ServerConfig) -> Middleware:
    """Middleware: every request under ``/__admin`` passes :func:`admin_refusal` first."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else request.path
        if any(p == ADMIN_PREFIX or p.startswith(ADMIN_PREFIX + "/") for p in (canonical, request.path)):
            refused = admin_refusal(request, config)
            if refused is not None:
                return refused
        return await handler(request)

    return guard
