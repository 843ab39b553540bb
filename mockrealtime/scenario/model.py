"""The scenario language: what a conversation does, as Python objects and as a YAML file.

A scenario is the session setup and a list of steps, seen from the client's side::

    # hello: one typed question answered with speech      <- the description
    scenario: 1
    session: {instructions: "Keep answers short.", voice: alloy}
    steps:
      - user: Hello!                                       # the user types; the client asks for a response
      - assistant: Hi there! How can I help you today?     # the answer: speech with this transcript
        audio_ms: 1900

Steps (one main key each; the rest are its options):

=====================  ===========================================================================
``user: TEXT``         the user types: ``conversation.item.create`` then ``response.create``
                       (``respond: false``: no response.create)
``speak: MS | WAV``    the user speaks for MS ms (or the WAV file's speech, path relative to the
                       scenario) after ``lead_ms`` of quiet; with server VAD the microphone streams
                       from here to the end and the VAD events sit where the audio has speech;
                       without, the client appends, commits and asks for a response
``assistant: TEXT``    one response: speech of ``audio_ms`` with TEXT as transcript (text only
                       when the session's output is text); with ``call: NAME`` and ``arguments``
                       the response (also) calls a tool, its arguments streamed as deltas;
                       ``assistant: ~`` and no call: a response with no output.
                       ``barge_in_ms: N``: the user starts speaking N ms into playback (the next
                       step is that ``speak``); ``cancel_ms: N``: the client cancels it then
``call: NAME``         a response that only calls a tool (``arguments: {...}``)
``tool_output: VALUE`` the client answers the latest call (``call_id`` to override, ``null`` to
                       leave it out), then ``response.create`` unless ``respond: false``
``update: {...}``      another ``session.update`` (same keys as ``session``)
``error: CODE``        on a client step: the server rejects it with this catalogue error
                       (``param`` and the other values its message needs); alone: the server
                       sends it unprompted (``session_expired``)
``wait: MS``           nothing happens for MS ms
``repeat: N``          ``steps:`` N times; ``{n}`` in their texts counts from 1
=====================  ===========================================================================

``sessions: [{steps: [...]}, ...]`` instead of ``steps`` records several connections.

``session`` keys: ``instructions``, ``voice``, ``output`` (audio | text), ``format`` (or
``input_format`` / ``output_format``: pcm16 | g711_ulaw | g711_alaw), ``turn_detection``
(server_vad | semantic_vad | none | a mapping), ``tools`` (flat Realtime tools; ``type: function``
is added when missing, anything else is sent as written), ``tool_choice``, ``model`` (a name, or
``{ga: ..., beta: ...}``; sent in the ``session.update``, and under ``session`` also the URL's
``model``), ``event_id``, ``error`` + ``param`` (the update is refused), and
``update: false`` to send no ``session.update`` at all. ``dialects: [ga]`` compiles one dialect.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mockrealtime.core import audio as _audio
from mockrealtime.core.events import DIALECTS
from mockrealtime.errors import ScenarioError
from mockrealtime.scenario.errors import CATALOGUE

FORMAT_VERSION = 1
TURN_DETECTION = ("server_vad", "semantic_vad", "none")


@dataclasses.dataclass
class Setup:
    """The session the client asks for (``session.update``); None leaves the server default."""

    model: str | dict[str, str] | None = None
    voice: str | None = None
    instructions: str | None = None
    output: str | None = None  # "audio" | "text"
    input_format: str | None = None  # pcm16 | g711_ulaw | g711_alaw
    output_format: str | None = None
    turn_detection: str | dict[str, Any] | None = None  # server_vad | semantic_vad | none | {...}
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    #: Send a session.update (default: when anything above is set); False keeps the server's defaults.
    send: bool | None = None
    error: str | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    event_id: str | None = None

    def model_in(self, dialect: str) -> str | None:
        """The model this setup names for ``dialect`` ("ga" or "beta"); None when it names none."""
        return self.model.get(dialect) if isinstance(self.model, dict) else self.model

    def sends(self) -> bool:
        if self.send is not None:
            return self.send
        return any(getattr(self, f) is not None for f in ("model", "voice", "instructions", "output", "input_format",
                                                           "output_format", "turn_detection", "tools", "tool_choice"))


@dataclasses.dataclass
class User:
    text: str
    respond: bool = True
    event_id: str | None = None
    error: str | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Speak:
    ms: int | None = None
    wav: str | None = None
    lead_ms: int = 600


@dataclasses.dataclass
class Assistant:
    text: str | None = None
    audio_ms: int | None = None
    call: str | None = None
    arguments: Any = None
    barge_in_ms: int | None = None
    cancel_ms: int | None = None


@dataclasses.dataclass
class ToolOutput:
    output: Any
    call_id: str | None | bool = True  # True: the latest call's id; None: left out
    respond: bool = True
    event_id: str | None = None
    error: str | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Update:
    setup: Setup


@dataclasses.dataclass
class ServerError:
    error: str
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Wait:
    ms: int


Step = User | Speak | Assistant | ToolOutput | Update | ServerError | Wait


@dataclasses.dataclass
class Scenario:
    name: str
    steps: list[Step] | None = None
    setup: Setup = dataclasses.field(default_factory=Setup)
    dialects: tuple[str, ...] = DIALECTS
    description: str = ""
    #: Several connections: one list of steps each (instead of ``steps``).
    sessions: list[list[Step]] | None = None
    #: Where WAV files named by ``speak`` are found.
    base_dir: str = "."

    def session_steps(self) -> list[list[Step]]:
        return self.sessions if self.sessions is not None else [self.steps or []]


# -- from YAML ------------------------------------------------------------------------------------

_SETUP_KEYS = {f.name for f in dataclasses.fields(Setup)} - {"values", "send"} | {"format", "param", "update"}
#: Values an error's message may need, given next to ``error:`` (the compiler fills in what it knows).
_VALUE_KEYS = {"param", "minutes", "buffered_ms", "response_id", "audio_ms", "audio_end_ms"}


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(self.path, where, message)

    def keys(self, node: Any, allowed: set[str], where: str) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(where, f"expected a mapping, got {type(node).__name__}")
        extra = sorted(set(node) - allowed)
        if extra:
            raise self.fail(where, f"unknown key(s) {', '.join(map(repr, extra))}; allowed: {', '.join(sorted(allowed))}")
        return node

    def number(self, node: Any, where: str) -> int:
        if isinstance(node, bool) or not isinstance(node, (int, float)) or node < 0:
            raise self.fail(where, f"expected a number of milliseconds, got {node!r}")
        return int(node)

    def error(self, node: dict[str, Any], where: str) -> tuple[str | None, dict[str, Any]]:
        code = node.get("error")
        if code is None:
            return None, {}
        if code not in CATALOGUE:
            raise self.fail(f"{where}.error", f"{code!r} is not in the error catalogue ({', '.join(sorted(CATALOGUE))})")
        values = {k: node[k] for k in _VALUE_KEYS if k in node}
        return code, values

    def setup(self, node: Any, where: str) -> Setup:
        node = self.keys(node if node is not None else {}, _SETUP_KEYS, where)
        setup = Setup(send=node.get("update"))
        for key in ("model", "voice", "instructions", "output", "input_format", "output_format",
                    "turn_detection", "tools", "tool_choice", "event_id"):
            if key in node:
                setattr(setup, key, node[key])
        if "format" in node:
            setup.input_format = setup.input_format or node["format"]
            setup.output_format = setup.output_format or node["format"]
        for key in ("input_format", "output_format"):
            value = getattr(setup, key)
            if value is not None and value not in _audio.FORMATS:
                raise self.fail(f"{where}.{key}", f"{value!r} is not an audio format ({', '.join(_audio.FORMATS)})")
        if setup.output not in (None, "audio", "text"):
            raise self.fail(f"{where}.output", "output is 'audio' or 'text'")
        td = setup.turn_detection
        if td is not None and not isinstance(td, dict) and td not in TURN_DETECTION:
            raise self.fail(f"{where}.turn_detection", f"turn_detection is one of {', '.join(TURN_DETECTION)}, or a mapping")
        if setup.tools is not None and not (isinstance(setup.tools, list) and all(isinstance(t, dict) for t in setup.tools)):
            raise self.fail(f"{where}.tools", "tools is a list of tool mappings")
        setup.error, setup.values = self.error(node, where)
        return setup

    def steps(self, node: Any, where: str, n: int | None = None) -> list[Step]:
        if not isinstance(node, list):
            raise self.fail(where, "steps is a list")
        out: list[Step] = []
        for i, raw in enumerate(node):
            out += self.step(raw, f"{where}[{i}]", n)
        return out

    def step(self, raw: Any, where: str, n: int | None) -> list[Step]:
        if not isinstance(raw, dict) or not raw:
            raise self.fail(where, "a step is a mapping such as {user: Hello!}")

        def text(value: Any) -> Any:
            return value.replace("{n}", str(n)) if isinstance(value, str) and n is not None else value

        if "repeat" in raw:
            node = self.keys(raw, {"repeat", "steps"}, where)
            count = self.number(node["repeat"], f"{where}.repeat")
            return [s for k in range(1, count + 1) for s in self.steps(node.get("steps"), f"{where}.steps", k)]
        if "user" in raw:
            node = self.keys(raw, {"user", "respond", "event_id", "error"} | _VALUE_KEYS, where)
            code, values = self.error(node, where)
            return [User(str(text(node["user"])), bool(node.get("respond", True)), node.get("event_id"), code, values)]
        if "speak" in raw:
            node = self.keys(raw, {"speak", "lead_ms"}, where)
            value = node["speak"]
            lead = self.number(node.get("lead_ms", 600), f"{where}.lead_ms")
            if isinstance(value, str):
                return [Speak(wav=value, lead_ms=lead)]
            return [Speak(ms=self.number(value, f"{where}.speak"), lead_ms=lead)]
        if "assistant" in raw or "call" in raw:
            node = self.keys(raw, {"assistant", "audio_ms", "call", "arguments", "barge_in_ms", "cancel_ms"}, where)
            step = Assistant(text(node.get("assistant")), call=node.get("call"), arguments=node.get("arguments"))
            for key in ("audio_ms", "barge_in_ms", "cancel_ms"):
                if node.get(key) is not None:
                    setattr(step, key, self.number(node[key], f"{where}.{key}"))
            return [step]
        if "tool_output" in raw:
            node = self.keys(raw, {"tool_output", "call_id", "respond", "event_id", "error"} | _VALUE_KEYS, where)
            code, values = self.error(node, where)
            return [ToolOutput(node["tool_output"], node.get("call_id", True), bool(node.get("respond", True)),
                               node.get("event_id"), code, values)]
        if "update" in raw:
            return [Update(self.setup(raw["update"], f"{where}.update"))]
        if "error" in raw:
            node = self.keys(raw, {"error"} | _VALUE_KEYS, where)
            code, values = self.error(node, where)
            assert code is not None
            return [ServerError(code, values)]
        if "wait" in raw:
            node = self.keys(raw, {"wait"}, where)
            return [Wait(self.number(node["wait"], f"{where}.wait"))]
        raise self.fail(where, f"unknown step {sorted(raw)}; a step starts with user, speak, assistant, call, tool_output, update, error, wait or repeat")


def from_document(doc: Any, *, name: str, path: str = "<scenario>", description: str = "", base_dir: str = ".") -> Scenario:
    """A scenario from its parsed YAML; ScenarioError names the place of the problem."""
    r = _Reader(path)
    top = r.keys(doc, {"scenario", "name", "dialects", "session", "steps", "sessions", "description"}, "$")
    if top.get("scenario") != FORMAT_VERSION:
        raise r.fail("$.scenario", f"a scenario file starts with 'scenario: {FORMAT_VERSION}'")
    dialects = top.get("dialects", list(DIALECTS))
    if isinstance(dialects, str):
        dialects = [dialects]
    if not dialects or any(d not in DIALECTS for d in dialects):
        raise r.fail("$.dialects", f"dialects are {' and/or '.join(DIALECTS)}")
    if ("steps" in top) == ("sessions" in top):
        raise r.fail("$", "a scenario has either steps or sessions")
    sessions = None
    steps = None
    if "sessions" in top:
        if not isinstance(top["sessions"], list) or not top["sessions"]:
            raise r.fail("$.sessions", "sessions is a list of {steps: [...]}")
        sessions = [r.steps(r.keys(s, {"steps"}, f"$.sessions[{i}]").get("steps"), f"$.sessions[{i}].steps")
                    for i, s in enumerate(top["sessions"])]
    else:
        steps = r.steps(top["steps"], "$.steps")
    return Scenario(
        name=str(top.get("name") or name), steps=steps, setup=r.setup(top.get("session"), "$.session"),
        dialects=tuple(d for d in DIALECTS if d in dialects), description=str(top.get("description") or description),
        sessions=sessions, base_dir=base_dir,
    )


def dumps_value(value: Any) -> str:
    """A tool output or arguments as the client sends them: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
