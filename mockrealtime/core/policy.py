"""Session-level behaviours of the real API, chosen per server or per connection.

* a required API key: a wrong one gets one ``invalid_api_key`` error, then close 3000;
* a maximum session duration: ``session_expired``, then close;
* "beta retired": a beta connection gets ``beta_api_shape_disabled``, then close 4000 (for teams
  checking their migration to GA);
* strict matching: every client event must be in the recording;
* the divergence policy: ``error`` (default) or ``close`` after the error.

Per connection, each can be set by a header ``X-Mockrealtime-<Setting>`` or a query parameter
``mockrealtime_<setting>`` (browsers cannot set headers; :meth:`ServerConfig.for_connection`).
Sans-IO: plain mappings in, decisions out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mockrealtime.config import ServerConfig

#: Close codes and reasons follow the pattern of the API's fatal in-band errors: one ``error``
#: event, then a close whose reason is ``<error.type>.<error.code>`` (protocol.md §1.5).
AUTH_CLOSE = 3000
FATAL_CLOSE = 4000
#: One public project records the session-expiry close as 1001 carrying the message (unverified).
EXPIRY_CLOSE = 1001

_BETA_DISABLED = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."


def presented_key(headers: Mapping[str, str], query: Mapping[str, str], subprotocols: Iterable[str]) -> str | None:
    """The key a client authenticated with: Bearer header, Azure api-key, or browser subprotocol."""
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    for source in (headers.get("api-key"), query.get("api-key")):
        if source:
            return source
    for proto in subprotocols:
        if proto.startswith("openai-insecure-api-key."):
            return proto[len("openai-insecure-api-key."):]
    return None


def mask_key(key: str) -> str:
    """How the API shows a key it refused: ``sk-proj-...sQoA``; never the whole key."""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:8]}...{key[-4:]}"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message,
                                       "param": None, "event_id": None}}


def refusal(settings: ServerConfig, dialect: str, key: str | None) -> tuple[dict[str, Any], int, str] | None:
    """The error event and close (code, reason) that end a connection at once, or None."""
    if settings.api_key is not None and key != settings.api_key:
        if key:
            message = (f"Incorrect API key provided: {mask_key(key)}. "
                       "You can find your API key at https://platform.openai.com/account/api-keys.")
        else:
            # Unverified for realtime: the REST API's wording for a missing key.
            message = ("You didn't provide an API key. You need to provide your API key in an Authorization "
                       "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        return _error("invalid_api_key", message), AUTH_CLOSE, "invalid_request_error.invalid_api_key"
    if settings.beta_retired and dialect == "beta":
        return _error("beta_api_shape_disabled", _BETA_DISABLED), FATAL_CLOSE, "invalid_request_error.beta_api_shape_disabled"
    return None


def expiry(max_session_s: float) -> tuple[dict[str, Any], int, str]:
    """What the server sends when a session reaches its maximum duration."""
    minutes = max_session_s / 60
    shown = f"{minutes:.3g}"  # 60 -> "60" as the API says; a test's 0.2 s -> "0.00333"
    message = f"Your session hit the maximum duration of {shown} minutes."
    return _error("session_expired", message), EXPIRY_CLOSE, message
