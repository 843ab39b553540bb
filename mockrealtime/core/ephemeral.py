"""Ephemeral keys: the REST companions that browser apps call before they open the WebSocket. Sans-IO.

Theory of operation
-------------------
A browser app never holds the real API key. Its backend asks the API for a short-lived key and
hands that to the page, which opens the WebSocket with it (subprotocol
``openai-insecure-api-key.<key>``). Three endpoints mint one:

* GA ``POST /v1/realtime/client_secrets``, body ``{"session": {...}, "expires_after": {...}}``,
  answer ``{"value": "ek_…", "expires_at": …, "session": {…}}``;
* beta ``POST /v1/realtime/sessions`` and ``POST /v1/realtime/transcription_sessions``, body the
  session itself, answer the session with ``client_secret: {"value", "expires_at"}``.

:func:`answer` turns one request (path, raw body, the key it carried, the caller's clock) into an
:class:`Answer`: HTTP status, JSON body, and the :class:`MintedKey` when one was minted. The answer
comes from the cassette when it recorded that endpoint (``rest:`` entries; a fresh key replaces the
recorded, redacted one), otherwise from the requested session configuration. Bad bodies get the
errors the API gives, found by the same schemas as the WebSocket's ``session.update``.

A :class:`KeyStore` remembers what was minted: the WebSocket accepts a key it holds (with
``--api-key``, only one minted under that key), and the session starts from the configuration the
key was minted with (:attr:`MintedKey.session`, merged over the recorded ``session.created``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from mockrealtime.core.events import BETA, GA
from mockrealtime.core.policy import AUTH_CLOSE, mask_key, refusal
from mockrealtime.protocol.frames import kind_of
from mockrealtime.protocol import ClientEventValidator, ProtocolError

CLIENT_SECRETS = "client_secrets"
SESSIONS = "sessions"
TRANSCRIPTION_SESSIONS = "transcription_sessions"
#: endpoint -> (dialect, the client event whose ``session`` schema checks the body)
ENDPOINTS: dict[str, tuple[str, str]] = {
    CLIENT_SECRETS: (GA, "session.update"),
    SESSIONS: (BETA, "session.update"),
    TRANSCRIPTION_SESSIONS: (BETA, "transcription_session.update"),
}
#: GA: ``expires_after.seconds`` defaults to 600 and lies in 10..7200 (openai SDK docstring).
GA_TTL_S, GA_TTL_MIN_S, GA_TTL_MAX_S = 600, 10, 7200
#: beta: "Currently, all tokens expire after one minute" (the API reference).
BETA_TTL_S = 60
DEFAULT_MODEL = {GA: "gpt-realtime", BETA: "gpt-4o-realtime-preview"}
#: Fields of an answered session that describe the minting, not the configuration.
_NOT_CONFIG = frozenset({"id", "object", "expires_at", "client_secret"})

# The REST API's own wording for an unparsable body (well known from every OpenAI endpoint).
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
    "have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
    "key from https://platform.openai.com/account/api-keys."
)


@dataclasses.dataclass(frozen=True)
class MintedKey:
    value: str
    expires_at: int
    dialect: str
    #: The session configuration the key was minted with: where its WebSocket session starts.
    session: dict[str, Any]
    #: The API key the request carried (None: the server required none).
    minted_under: str | None


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    minted: MintedKey | None = None


class KeyStore:
    """The keys minted so far (this process only; a restarted mock forgets them, as keys expire)."""

    def __init__(self) -> None:
        self._keys: dict[str, MintedKey] = {}

    def add(self, key: MintedKey) -> None:
        self._keys[key.value] = key

    def find(self, value: str | None) -> MintedKey | None:
        return self._keys.get(value) if value else None

    def __len__(self) -> int:
        return len(self._keys)


def new_key_value() -> str:
    """``ek_`` and 32 hex digits, the shape of the API's ephemeral keys."""
    return "ek_" + secrets.token_hex(16)


def error(status: int, message: str, code: str | None = None, param: str | None = None) -> Answer:
    """The REST API's error body."""
    return Answer(status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})


def auth_error(required: str | None, presented: str | None) -> Answer | None:
    """401 when the server requires ``required`` and the request carried something else."""
    if required is None or presented == required:
        return None
    if not presented:
        return error(401, _NO_KEY)
    return error(401, f"Incorrect API key provided: {mask_key(presented)}. You can find your API key at "
                      "https://platform.openai.com/account/api-keys.", "invalid_api_key")


def answer(
    endpoint: str,
    body: bytes | str,
    *,
    now_s: float,
    api_key: str | None = None,
    recorded: Mapping[str, Any] | None = None,
) -> Answer:
    """Mint a key for one request to ``endpoint`` (a key of :data:`ENDPOINTS`), or say what is wrong.

    ``api_key`` is the key the request carried (kept on the minted key); ``recorded`` a cassette's
    ``rest:`` entry for this endpoint, answered in place of a made-up session.
    """
    dialect, _ = ENDPOINTS[endpoint]
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return error(400, _BAD_JSON)
    if not isinstance(doc, dict):
        # Unverified wording: the invalid_type family the API uses for parameters.
        return error(400, f"Invalid type for body: expected an object, but got {kind_of(doc)} instead.", "invalid_type")
    requested, ttl_s, problem = _requested(endpoint, doc)
    if problem is not None:
        return error(400, problem.message, problem.code, problem.param)
    if recorded is not None:
        return _from_recording(endpoint, recorded, now_s, ttl_s, api_key)
    expires_at = int(now_s) + ttl_s
    value = new_key_value()
    session = _session(endpoint, requested, int(now_s))
    if dialect == GA:
        out = {"value": value, "expires_at": expires_at, "session": session}
    else:
        out = {**session, "client_secret": {"value": value, "expires_at": expires_at}}
    return Answer(200, out, MintedKey(value, expires_at, dialect, requested, api_key))


def _requested(endpoint: str, doc: dict[str, Any]) -> tuple[dict[str, Any], int, ProtocolError | None]:
    """The session configuration asked for, the key's lifetime, or the error the API gives."""
    dialect, schema_event = ENDPOINTS[endpoint]
    validator = ClientEventValidator(dialect)
    if dialect == GA:
        for key in doc:
            if key not in ("session", "expires_after"):
                return {}, 0, ProtocolError("unknown_parameter", f"Unknown parameter: '{key}'.", key)
        session = doc.get("session", {"type": "realtime"})
        if not isinstance(session, dict):
            return {}, 0, ProtocolError("invalid_type", f"Invalid type for 'session': expected an object, but got {kind_of(session)} instead.", "session")
        problem = validator.validate({"type": schema_event, "session": session})
        ttl = doc.get("expires_after", {})
        if problem is None:
            problem = _check_ttl(ttl)
        seconds = ttl.get("seconds", GA_TTL_S) if isinstance(ttl, dict) else GA_TTL_S
        return session, seconds, problem
    # beta: the body is the session; the schemas speak of 'session.x', the API of 'x' here
    problem = validator.validate({"type": schema_event, "session": doc})
    if problem is not None:
        problem = ProtocolError(problem.code, problem.message.replace("'session.", "'"),
                                problem.param[len("session."):] if problem.param and problem.param.startswith("session.") else problem.param)
    return doc, BETA_TTL_S, problem


def _check_ttl(ttl: Any) -> ProtocolError | None:
    # Unverified wording, following the validator's families (unknown_parameter, invalid_type, ranges).
    if not isinstance(ttl, dict):
        return ProtocolError("invalid_type", f"Invalid type for 'expires_after': expected an object, but got {kind_of(ttl)} instead.", "expires_after")
    for key in ttl:
        if key not in ("anchor", "seconds"):
            return ProtocolError("unknown_parameter", f"Unknown parameter: 'expires_after.{key}'.", f"expires_after.{key}")
    if "anchor" in ttl and ttl["anchor"] != "created_at":
        return ProtocolError("invalid_value", f"Invalid value: '{ttl['anchor']}'. Supported values are: 'created_at'.", "expires_after.anchor")
    seconds = ttl.get("seconds", GA_TTL_S)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return ProtocolError("invalid_type", f"Invalid type for 'expires_after.seconds': expected an integer, but got {kind_of(seconds)} instead.", "expires_after.seconds")
    if seconds < GA_TTL_MIN_S:
        return ProtocolError("integer_below_min_value", f"Invalid 'expires_after.seconds': integer below minimum value. Expected a value >= {GA_TTL_MIN_S}, but got {seconds} instead.", "expires_after.seconds")
    if seconds > GA_TTL_MAX_S:
        return ProtocolError("integer_above_max_value", f"Invalid 'expires_after.seconds': integer above maximum value. Expected a value <= {GA_TTL_MAX_S}, but got {seconds} instead.", "expires_after.seconds")
    return None


def _session(endpoint: str, requested: dict[str, Any], now_s: int) -> dict[str, Any]:
    """The session object the API answers with: ids and defaults, then what was asked for."""
    sid = "sess_" + secrets.token_hex(12)
    if endpoint == CLIENT_SECRETS:
        transcription = requested.get("type") == "transcription"
        base: dict[str, Any] = {"type": requested.get("type", "realtime"), "object": "realtime.transcription_session" if transcription else "realtime.session", "id": sid}
        if not transcription:
            base["model"] = DEFAULT_MODEL[GA]
            base["output_modalities"] = ["audio"]
        base["expires_at"] = 0  # the session has not started: the API shows 0 here (unverified)
    elif endpoint == TRANSCRIPTION_SESSIONS:
        base = {"id": sid, "object": "realtime.transcription_session", "expires_at": 0}
    else:
        base = {"id": sid, "object": "realtime.session", "model": DEFAULT_MODEL[BETA], "modalities": ["text", "audio"], "expires_at": 0}
    return {**base, **copy.deepcopy(requested)}


def _from_recording(endpoint: str, recorded: Mapping[str, Any], now_s: float, ttl_s: int, api_key: str | None) -> Answer:
    """The recorded answer with a fresh key (the cassette holds ``<redacted>``) and a fresh expiry."""
    status = int(recorded.get("status", 200))
    body = copy.deepcopy(dict(recorded.get("response") or {}))
    if status != 200:
        return Answer(status, body)
    dialect, _ = ENDPOINTS[endpoint]
    value, expires_at = new_key_value(), int(now_s) + ttl_s
    session: dict[str, Any]
    if dialect == GA:
        body["value"], body["expires_at"] = value, expires_at
        recorded_session = body.get("session")
        session = recorded_session if isinstance(recorded_session, dict) else {}
    else:
        body["client_secret"] = {"value": value, "expires_at": expires_at}
        session = body
    config = {k: copy.deepcopy(v) for k, v in session.items() if k not in _NOT_CONFIG}
    return Answer(200, body, MintedKey(value, expires_at, dialect, config, api_key))


def websocket_refusal(settings: Any, dialect: str, key: MintedKey, now_s: float) -> tuple[dict[str, Any], int, str] | None:
    """Why a WebSocket presenting a minted key is refused (error event, close code, reason), or None.

    ``settings`` are the connection's (a dataclass with ``api_key``, as ``policy.refusal`` takes).
    With ``--api-key`` only keys minted under that key are good; an expired key never is.
    """
    if key.expires_at <= now_s or (settings.api_key is not None and key.minted_under != settings.api_key):
        # Unverified: the wording the API uses for an expired ephemeral key; this is its wrong-key one.
        message = (f"Incorrect API key provided: {mask_key(key.value)}. "
                   "You can find your API key at https://platform.openai.com/account/api-keys.")
        event = {"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_api_key",
                                            "message": message, "param": None, "event_id": None}}
        return event, AUTH_CLOSE, "invalid_request_error.invalid_api_key"
    return refusal(dataclasses.replace(settings, api_key=None), dialect, key.value)


def recorded_for(entries: Sequence[Mapping[str, Any]], endpoint: str, nth: int) -> Mapping[str, Any] | None:
    """The ``nth`` call's recorded answer for ``endpoint`` (cycling through those recorded), or None."""
    matching = [e for e in entries if str(e.get("path", "")).rstrip("/").endswith("/realtime/" + endpoint)]
    return matching[nth % len(matching)] if matching else None
