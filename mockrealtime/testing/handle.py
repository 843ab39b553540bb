"""The per-test handle behind the ``realtime_mock`` fixture: one test's cassette on a shared server.

Theory of operation
-------------------
One :class:`~mockrealtime.testing.runner.BackgroundServer` serves a whole test session (per xdist
worker). Each test gets a *route* of its own, ``/c/<token>/``: its cassette is registered in the
server's library under the token and its settings (pace, matching, strictness) go with the
route, so tests never see each other's cassettes, sessions or journals. Setting a test up is a
few dictionary writes in the server's loop; the cassette is parsed once and cached by file.

In a recording mode the route is not on the replay server: a recorder (:mod:`mockrealtime.net.record`)
is started for the test on the same loop and the URLs point at it. It writes into a private
temporary directory; only a test that passed (or ``record_failed``) gets its cassette moved into
place, so a failed run never leaves a half-recorded cassette behind.

The handle turns what the server saw into test outcomes: a divergence or an unplayed remainder is
returned as a report (:mod:`mockrealtime.testing.report`) that the plugin raises as a
:class:`~mockrealtime.errors.DivergenceError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from mockrealtime.core import cassette as _cassette
from mockrealtime.errors import CassetteError, ConfigError, DivergenceError
from mockrealtime.core.events import AUDIO_APPEND, BETA, Direction
from mockrealtime.core.journal import Journal, SentEvent
from mockrealtime.core.library import bundled_cassette_dir
from mockrealtime.core.engine import Divergence, strip_audio
from mockrealtime.testing.report import ConnectionOutcome, Context, display_path, divergence_report, rerecord_command, unplayed_report
from mockrealtime.testing.runner import BackgroundServer, close_sockets
from mockrealtime.testing.settings import Settings

_EXTENSIONS = (".yaml", ".yml")
_VARIANT_SUFFIXES = ("", ".ga", ".beta")
_SIDECAR = r"\.s\d+\.(client|server)\.(pcm16|g711_ulaw|g711_alaw)\.wav$"
#: How long to wait for a connection whose socket is closing to be finished by the server.
SETTLE_S = 1.0
_tokens = itertools.count(1)


# -- where the cassette is ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CassetteLocation:
    #: Where the test's cassette is, or would be recorded (``<dir>/<stem>.yaml``, ``.beta.yaml`` for beta).
    path: str
    #: The files that exist: the dialect variants to serve.
    files: tuple[str, ...]
    #: The files are bundled with mockrealtime (found by name, not in the cassette directory).
    bundled: bool = False
    #: The scenario file the files were compiled from (they sit in the compile cache); never recorded over.
    scenario: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.files)


def default_cassette_name(test_name: str, class_name: str | None = None) -> str:
    """pytest-recording's default: ``Class.test_name`` with characters unsafe in file names replaced."""
    name = f"{class_name}.{test_name}" if class_name else test_name
    for ch in "<>?%*:|\"'/\\":
        name = name.replace(ch, "-")
    if len(name) > 200:  # file names are limited (255 bytes); keep it unique
        import hashlib

        name = name[:160] + "..." + hashlib.md5(name.encode()).hexdigest()
    return name


def locate_cassette(
    cassette: str | None,
    dialect: str | None,
    *,
    cassette_dir: str,
    default_name: str,
    bundled_dir: str | None = None,
) -> CassetteLocation:
    """Find a test's cassette by the conventions (see the README's "pytest plugin" section).

    None: ``<cassette_dir>/<default_name>.yaml``. A path (it has a ``/`` or ends in ``.yaml``):
    relative to ``cassette_dir`` unless absolute. A bare name: ``<cassette_dir>/<name>.yaml``,
    else the bundled cassette of that name.
    """
    return _compiled(_locate(cassette, dialect, cassette_dir=cassette_dir, default_name=default_name, bundled_dir=bundled_dir))


def _compiled(location: CassetteLocation) -> CassetteLocation:
    """A scenario where a cassette was looked for: the cassettes it compiles to (compiled now, cached)."""
    from mockrealtime.core.library import cassette_files

    for path in location.files:
        expanded = cassette_files(path)
        if expanded != [path]:
            return dataclasses.replace(location, files=tuple(expanded), scenario=path)
    return location


def _locate(cassette: str | None, dialect: str | None, *, cassette_dir: str, default_name: str,
            bundled_dir: str | None) -> CassetteLocation:
    suffix = ".beta.yaml" if dialect == BETA else ".yaml"
    if cassette is None:
        stem = os.path.join(cassette_dir, default_name)
        return CassetteLocation(stem + suffix, _variants(stem))
    if "/" in cassette or os.sep in cassette or cassette.endswith(_EXTENSIONS):
        path = cassette if os.path.isabs(cassette) else os.path.join(cassette_dir, cassette)
        path = os.path.normpath(path)
        if path.endswith(_EXTENSIONS):
            return CassetteLocation(path, (path,) if os.path.isfile(path) else ())
        return CassetteLocation(path + suffix, _variants(path))
    stem = os.path.join(cassette_dir, cassette)
    files = _variants(stem)
    if not files and bundled_dir is not None:
        bundled = _variants(os.path.join(bundled_dir, cassette))
        if bundled:
            return CassetteLocation(stem + suffix, bundled, bundled=True)
    return CassetteLocation(stem + suffix, files)


def _close_names(path: str) -> list[str]:
    """Cassette names near the one at ``path`` (beside it, or bundled): what a typo meant."""
    wanted = os.path.basename(path).split(".")[0]
    names: set[str] = set()
    for folder in (os.path.dirname(path), bundled_cassette_dir()):
        if os.path.isdir(folder):
            names.update(f.split(".")[0] for f in os.listdir(folder) if f.endswith(_EXTENSIONS))
    return difflib.get_close_matches(wanted, sorted(names - {wanted}), n=3)


def _variants(stem: str) -> tuple[str, ...]:
    return tuple(
        stem + variant + ext
        for variant in _VARIANT_SUFFIXES
        for ext in _EXTENSIONS
        if os.path.isfile(stem + variant + ext)
    )


# -- what the server saw ------------------------------------------------------------------------


@dataclasses.dataclass
class _Seen:
    """A snapshot of one connection, taken in the server's loop."""

    id: int
    session: int
    dialect: str
    open: bool
    closing: bool
    close_code: int | None
    journal: list[Any]
    divergences: list[Divergence]
    unplayed: list[dict[str, Any]]
    engine: Any


def _snapshot(state: Any, token: str) -> list[_Seen]:
    out = []
    for r in state.connections:
        if r.route != token:
            continue
        e = r.engine
        socket = r.socket
        out.append(_Seen(
            r.id, r.session, r.dialect, r.open, bool(socket is not None and socket.closed), r.close_code,
            list(e.journal), list(e.divergences), e.unplayed(), e,
        ))
    return out


# -- the handle -------------------------------------------------------------------------------------


class RealtimeMock:
    """One test's view of mockrealtime: the URLs to give a client, the journal, the checks.

    :attr:`websocket_base_url` is what the openai SDK takes (``AsyncOpenAI(websocket_base_url=...)``);
    :attr:`ws_url` is the full Realtime endpoint for clients that take a URL as is (openai-agents'
    ``model_config={"url": ...}``); :attr:`http_url` is the same base with an ``http`` scheme for
    clients that derive the WebSocket URL from an HTTP base (``base_url=``).
    """

    def __init__(self, server: BackgroundServer, settings: Settings, location: CassetteLocation, *, nodeid: str = "") -> None:
        self.server = server
        self.settings = settings
        self.location = location
        self.nodeid = nodeid
        self.token = f"t{next(_tokens)}"
        #: "replay", "record" or "episodes" (replay, recording what the cassette does not hold).
        self.mode = _mode(settings.record_mode, location)
        self._base = f"{server.ws_url}/c/{self.token}"
        self._accepted: dict[int, int] = {}  # connection id -> divergences accepted by the test
        self._reported: dict[int, int] = {}  # connection id -> divergences already reported
        self._unplayed_checked = False
        self._recording: Any = None  # the recorder's context manager and handle
        self._tmpdir: str | None = None
        self._episodes: Any = None
        self._finished = False

    # -- URLs ----------------------------------------------------------------------------------

    @property
    def websocket_base_url(self) -> str:
        """For the openai SDK: ``AsyncOpenAI(websocket_base_url=realtime_mock.websocket_base_url)``."""
        return self._base + "/v1"

    @property
    def ws_url(self) -> str:
        """The Realtime endpoint itself, for clients that use a URL verbatim."""
        return self._base + "/v1/realtime"

    @property
    def http_url(self) -> str:
        """The base with an http scheme, for clients that derive the WebSocket URL (``base_url=``)."""
        return "http" + self.websocket_base_url[2:]

    @property
    def wss_url(self) -> str:
        """:attr:`ws_url` over TLS, for clients that insist on ``wss://`` (trust :attr:`ca_file`)."""
        return self._tls_base("wss") + "/v1/realtime"

    @property
    def wss_base_url(self) -> str:
        """:attr:`websocket_base_url` over TLS (``AsyncOpenAI(websocket_base_url=...)``)."""
        return self._tls_base("wss") + "/v1"

    @property
    def https_url(self) -> str:
        """The base over TLS with an https scheme: the npm SDK's ``baseURL``, the REST endpoints."""
        return self._tls_base("https") + "/v1"

    @property
    def ca_file(self) -> str | None:
        """The CA file that signed the TLS listener's certificate (None for your own certfile)."""
        return self.server.tls().ca_file

    def _tls_base(self, scheme: str) -> str:
        if self.mode != "replay":
            raise ConfigError(
                f"mockrealtime: realtime_mock.{scheme}_url is for replay; in a {self.mode} mode connect "
                "over ws:// (realtime_mock.ws_url)"
            )
        self.server.tls()
        return f"{scheme}://{self.server.host}:{self.server.tls_port}/c/{self.token}"

    @property
    def cassette_path(self) -> str:
        """The cassette replayed (the GA variant when there are two), or the one being recorded."""
        return self.location.files[0] if self.location.files and self.mode != "record" else self.location.path

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> RealtimeMock:
        if self.location.scenario is not None and self.settings.record_mode in ("all", "rewrite", "new_episodes"):
            raise CassetteError(
                f"mockrealtime: {display_path(self.location.scenario)} is a scenario: it is compiled, never recorded "
                f"over (record mode {self.settings.record_mode!r}); use record mode 'none' or 'once', or name another cassette"
            )
        if self.mode == "replay" and not self.location.exists:
            close = _close_names(self.location.path)
            typo = f"\nA typo? Close names: {', '.join(close)}." if close else ""
            raise CassetteError(
                f"mockrealtime: no cassette at {display_path(self.location.path)}, and record mode "
                f"{self.settings.record_mode!r} never goes live.{typo}\nRecord it: {rerecord_command(self.nodeid, 'once')}"
                " (the key comes from OPENAI_API_KEY)"
            )
        if self.settings.record_mode == "rewrite":
            _remove_cassette(self.location)
        if self.mode == "record":
            self._start_recording()
        else:
            files = self._files()
            self.server.call(self._install, files)
            if self.mode == "episodes":
                from mockrealtime.testing.episodes import start_episodes

                try:
                    self._episodes = start_episodes(self, files)
                except BaseException:
                    self.server.call(self._uninstall)
                    raise
                self._base = self._episodes.base_url
        return self

    def _files(self) -> list[str]:
        files = list(self.location.files)
        if self.settings.dialect is not None:
            files = [f for f in files if _cassette.load(f).dialect == self.settings.dialect]
            if not files:
                found = ", ".join(display_path(f) for f in self.location.files)
                raise CassetteError(f"mockrealtime: the cassette has no {self.settings.dialect} variant (found {found})")
        return files

    def _install(self, files: Sequence[str]) -> None:
        from mockrealtime.net.server import Route

        state = self.server.state
        state.reset()  # tests run one at a time per process: forget the previous test's connections
        state.library.register(self.token, files)
        s = self.settings
        config = dataclasses.replace(state.config, pace=s.pace, strict=s.strict)
        state.routes[self.token] = Route(config, s.matching if s.matching is not None else state.match_override)

    def _uninstall(self) -> None:
        state = self.server.state
        state.routes.pop(self.token, None)
        state.library.unregister(self.token)

    def finish(self, *, passed: bool) -> str | None:
        """End the test: close its connections, save a recording, unregister; a failure report or None."""
        if self._finished:
            return None
        self._finished = True
        try:
            if self.mode == "record":
                return self._finish_recording(passed)
            text = None
            if self._episodes is not None:  # first: it closes its connections to the route
                text = self._episodes.finish(passed or self.settings.record_failed)
            self.server.run(self._close_route())
            if passed:
                text = text or self._failure(final=True)
            return text
        finally:
            if self.mode != "record":
                self.server.call(self._uninstall)
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    async def _close_route(self) -> None:
        state = self.server.state
        sockets = [r.socket for r in state.connections if r.route == self.token and r.open and r.socket is not None]
        if sockets:
            await close_sockets(sockets, self.server.close_timeout_s)

    # -- what the client did -------------------------------------------------------------------

    def _seen(self) -> list[_Seen]:
        if self.mode == "record":
            return []
        seen = self.server.call(_snapshot, self.server.state, self.token)
        if self._episodes is not None:
            seen = [s for s in seen if s.id not in self._episodes.handed_over()]
        return seen

    @property
    def journal(self) -> Journal:
        """What the client sent, in order, over all of this test's connections (see :class:`Journal`)."""
        if self.mode == "record":
            return self._recorded_journal()
        if self._episodes is not None:
            return self._episodes.journal()
        return Journal([SentEvent(s.id, j.at_ms, j.event, j.outcome, j.event_index) for s in self._seen() for j in s.journal])

    @property
    def connections(self) -> list[dict[str, Any]]:
        """One summary per connection: session, dialect, open, close code, divergences, unplayed."""
        return [
            {"id": s.id, "session": s.session, "dialect": s.dialect, "open": s.open, "close_code": s.close_code,
             "divergences": [d.to_dict() for d in s.divergences], "unplayed": s.unplayed}
            for s in self._seen()
        ]

    @property
    def divergences(self) -> list[Divergence]:
        return [d for s in self._seen() for d in s.divergences]

    def unplayed(self) -> list[dict[str, Any]]:
        """What the recording still holds that no connection played (per connection, event by event)."""
        return [dict(item, connection=s.id) for s in self._seen() for item in s.unplayed]

    def accept_divergences(self) -> list[Divergence]:
        """The divergences so far, marked as expected by the test: they no longer fail it."""
        seen = self._seen()
        for s in seen:
            self._accepted[s.id] = len(s.divergences)
        return [d for s in seen for d in s.divergences]

    def assert_all_played(self) -> None:
        """Fail (DivergenceError) if a connection diverged or left recorded events unplayed."""
        __tracebackhide__ = True
        text = self._failure(final=True, allow_unplayed=False)
        if text:
            raise DivergenceError(text)

    # -- checks ----------------------------------------------------------------------------------

    def check_after_call(self) -> str | None:
        """After the test function returned: divergences, and unplayed events if every connection is closed."""
        return self._failure(final=False)

    def explain(self) -> str | None:
        """For a test that failed on its own: what mockrealtime saw, if it might be why."""
        seen = self._settled()
        diverged = self._divergence_text(seen, mark=False)
        if diverged is None and self.mode != "record":
            # also for a connection still open: what the replay waits for is often why a test timed out
            return self._unplayed_text(seen)
        return diverged

    def _settled(self) -> list[_Seen]:
        """A snapshot once the server has finished with connections whose socket is already closing."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            seen = self._seen()
            if not any(s.open and s.closing for s in seen) or time.monotonic() > deadline:
                return seen
            time.sleep(0.002)

    def _failure(self, *, final: bool, allow_unplayed: bool | None = None) -> str | None:
        if self.mode == "record":
            return None
        seen = self._settled()
        diverged = self._divergence_text(seen, mark=True)
        allow = self.settings.allow_unplayed if allow_unplayed is None else allow_unplayed
        if not allow and not self._unplayed_checked and (final or all(not s.open for s in seen)):
            self._unplayed_checked = True
            if diverged is None:  # after a divergence, what is left unplayed follows from it
                return self._unplayed_text(seen)
        return diverged

    def _divergence_text(self, seen: list[_Seen], *, mark: bool) -> str | None:
        outcomes = []
        cassette = matcher = None
        for s in seen:
            skip = max(self._accepted.get(s.id, 0), self._reported.get(s.id, 0))
            new = s.divergences[skip:]
            if mark:
                self._reported[s.id] = len(s.divergences)
            if new:
                outcomes.append(self._outcome(s, divergences=new))
                cassette, matcher = s.engine.cassette, s.engine.matcher
        if not outcomes:
            return None
        return divergence_report(outcomes, self._context(cassette.path if cassette else None), cassette, matcher)

    def _unplayed_text(self, seen: list[_Seen]) -> str | None:
        cassette_sessions = self._session_count(seen)
        played = {s.session for s in seen}
        if self._episodes is not None:  # sessions whose rest went live were played as far as they go
            played |= self._episodes.played_sessions()
        missing = tuple(i for i in range(cassette_sessions) if i not in played)
        context = dataclasses.replace(self._context(seen[0].engine.cassette.path if seen else None),
                                      unplayed_sessions=missing, connected=bool(played))
        return unplayed_report([self._outcome(s) for s in seen], context, seen[0].engine.matcher if seen else None)

    def _session_count(self, seen: list[_Seen]) -> int:
        if seen:
            return len(seen[0].engine.cassette.sessions)
        files = self._files() if self.location.files else []
        return len(_cassette.load(files[0]).sessions) if files else 0

    def _outcome(self, s: _Seen, divergences: Sequence[Divergence] | None = None) -> ConnectionOutcome:
        matched = [j.event_index for j in s.journal if j.outcome == "matched" and j.event_index is not None]
        return ConnectionOutcome(
            s.id, s.session, s.dialect, s.open, s.close_code,
            tuple(s.divergences if divergences is None else divergences), tuple(s.unplayed),
            max(matched) if matched else None, _near_misses(s),
        )

    def _context(self, path: str | None) -> Context:
        return Context(
            cassette_path=path or self.cassette_path, nodeid=self.nodeid or None, match=self.settings.match,
            record_mode=self.settings.record_mode,
        )

    # -- recording ---------------------------------------------------------------------------------

    def _start_recording(self) -> None:
        from mockrealtime.net.record import RecordConfig, recording_server

        key = os.environ.get("OPENAI_API_KEY") or None
        if key is None and "api.openai.com" in self.settings.upstream:
            raise ConfigError(
                f"record mode {self.settings.record_mode} goes live and needs OPENAI_API_KEY in the environment"
            )
        self._tmpdir = tempfile.mkdtemp(prefix="mockrealtime-")
        output = os.path.join(self._tmpdir, os.path.basename(self.location.path))
        if not output.endswith(_EXTENSIONS):
            output += ".yaml"
        config = RecordConfig(
            upstream=self.settings.upstream, output=output, api_key=key,
            redact_paths=self.settings.redact_paths, redact_patterns=self.settings.redact_patterns,
        )
        cm = recording_server(config)
        url, handle = self.server.run(cm.__aenter__())
        handle.recorder.keep_client_frames = True  # for the journal, once parts are saved
        self._recording = (cm, handle)
        self._base = url

    def _finish_recording(self, passed: bool) -> str | None:
        cm, handle = self._recording
        try:
            self.server.run(cm.__aexit__(None, None, None))
        except Exception as exc:  # a secret left in the recording: nothing is saved
            if passed or self.settings.record_failed:
                return f"mockrealtime: the recording was not saved: {exc}"
            return None
        if not (passed or self.settings.record_failed):
            return None
        written = [p for p in handle.saved_paths if p.endswith(_EXTENSIONS)]
        if not written:
            return (
                "mockrealtime: nothing was recorded: no client connected to this test's endpoint "
                f"({self.websocket_base_url}); point the client at realtime_mock.websocket_base_url"
            )
        install_recording(self._tmpdir, os.path.dirname(self.location.path))  # type: ignore[arg-type]
        return None

    def _recorded_journal(self) -> Journal:
        if self._recording is None:
            return Journal()
        handle = self._recording[1]
        recordings = self.server.call(lambda: [(r.index, r.client_frames + r.frames) for r in handle.recorder.recordings])
        entries = []
        for index, frames in recordings:
            for direction, offset_ms, text in frames:
                if direction is not Direction.CLIENT:
                    continue
                try:
                    event = json.loads(text)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    outcome = "audio" if event.get("type") == AUDIO_APPEND else "recorded"
                    entries.append(SentEvent(index, offset_ms, strip_audio(event), outcome))
        return Journal(entries)


def _near_misses(s: _Seen) -> tuple[tuple[int, dict[str, Any], dict[str, Any], tuple[Any, ...]], ...]:
    """Events answered from state (lenient mode) that have the type of the next recorded client event."""
    nxt = next((i for i in s.unplayed if i["direction"] == "client" and i["type"] != AUDIO_APPEND), None)
    if nxt is None or nxt.get("event_index") is None:
        return ()
    expected = s.engine.cassette.sessions[s.session].events[nxt["event_index"]].event
    out = []
    for j in s.journal:
        if j.outcome == "answered" and j.event.get("type") == nxt["type"]:
            diffs = tuple(s.engine.matcher.differences(expected, j.event))
            out.append((nxt["event_index"], expected, j.event, diffs))
    return tuple(out)


def _mode(record_mode: str, location: CassetteLocation) -> str:
    if record_mode in ("all", "rewrite"):
        return "record"
    if record_mode in ("once", "new_episodes") and not location.exists:
        return "record"
    if record_mode == "new_episodes":
        return "episodes"
    return "replay"


def _remove_cassette(location: CassetteLocation) -> None:
    """rewrite: delete the test's cassette (every variant and its audio) before recording it anew."""
    if location.bundled:
        return
    for path in location.files:
        directory, stem = os.path.dirname(path), os.path.basename(path)
        for ext in _EXTENSIONS:
            if stem.endswith(ext):
                stem = stem[: -len(ext)]
        pattern = re.compile(re.escape(stem) + _SIDECAR)
        for entry in os.listdir(directory):
            if pattern.match(entry):
                os.unlink(os.path.join(directory, entry))
        os.unlink(path)


def install_recording(source_dir: str, target_dir: str) -> list[str]:
    """Move a recorded cassette (YAML files and their WAV sidecars) into ``target_dir``.

    Sidecars first and each YAML last, each file atomically (copied beside its target, then
    renamed), so the YAML there never names audio that is missing; sidecars of the previous
    version of the same cassette that are no longer named are removed.
    """
    os.makedirs(target_dir, exist_ok=True)
    names = sorted(os.listdir(source_dir), key=lambda n: n.endswith(_EXTENSIONS))
    written = []
    for name in names:
        target = os.path.join(target_dir, name)
        partial = os.path.join(target_dir, f".{name}.{os.getpid()}.tmp")
        shutil.copyfile(os.path.join(source_dir, name), partial)
        os.replace(partial, target)
        written.append(target)
    for name in names:
        if not name.endswith(_EXTENSIONS):
            continue
        stem = name.rsplit(".", 1)[0]
        pattern = re.compile(re.escape(stem) + _SIDECAR)
        for entry in os.listdir(target_dir):
            if pattern.match(entry) and entry not in names:
                os.unlink(os.path.join(target_dir, entry))
    return written


def bundled_dir() -> str:
    return bundled_cassette_dir()
