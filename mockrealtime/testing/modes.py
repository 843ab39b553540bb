"""The record modes, one small class each, and the runs they choose for a test.

A record mode (:class:`~mockrealtime.config.RecordMode`) only decides, from whether the test's
cassette exists, what the test runs on:

================  ================================  ==========================================
mode              cassette exists                   cassette missing
================  ================================  ==========================================
``none``          :class:`ReplayRun`                fail, with the command that records it
``once``          :class:`ReplayRun`                :class:`RecordRun`
``new_episodes``  :class:`EpisodesRun`              :class:`RecordRun`
``all``           :class:`RecordRun`                :class:`RecordRun`
``rewrite``       delete it, :class:`RecordRun`     :class:`RecordRun`
================  ================================  ==========================================

A *run* is what the test's client talks to and what the handle asks afterwards: its base URL,
what the server saw (:meth:`Run.seen`), the journal, and :meth:`Run.stop` at the end (close the
connections; save a recording when the test passed or ``record_failed``).
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any

from mockrealtime.config import RecordMode, ServerConfig
from mockrealtime.core import cassette as _cassette
from mockrealtime.core.engine import Divergence, strip_audio
from mockrealtime.core.events import AUDIO_APPEND, Direction
from mockrealtime.core.journal import Journal, SentEvent
from mockrealtime.core.redaction import save_checked
from mockrealtime.errors import CassetteError, ConfigError
from mockrealtime.net.episodes import Episodes
from mockrealtime.net.record import recording_server
from mockrealtime.testing.report import display_path, rerecord_command
from mockrealtime.testing.runner import BackgroundServer, close_sockets
from mockrealtime.testing.storage import EXTENSIONS, CassetteLocation, close_names, install_recording, remove_cassette


@dataclasses.dataclass(frozen=True)
class Case:
    """One test as a run needs it: the shared server, the test's configuration and cassette."""

    server: BackgroundServer
    config: ServerConfig
    location: CassetteLocation
    #: The test's route on the server, ``/c/<token>/``.
    token: str
    nodeid: str = ""


# -- what the server saw ------------------------------------------------------------------------


@dataclasses.dataclass
class Seen:
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


def snapshot(state: Any, token: str) -> list[Seen]:
    out = []
    for r in state.connections:
        if r.route != token:
            continue
        e = r.engine
        socket = r.socket
        out.append(Seen(
            r.id, r.session, r.dialect, r.open, bool(socket is not None and socket.closed), r.close_code,
            list(e.journal), list(e.divergences), e.unplayed(), e,
        ))
    return out


# -- runs ---------------------------------------------------------------------------------------


class Run(abc.ABC):
    """What a test runs on. Subclasses set :attr:`kind` and override what differs."""

    kind = ""
    #: Whether divergences and unplayed events fail the test (a recording has nothing to diverge from).
    judged = True

    def __init__(self, case: Case) -> None:
        self.case = case
        self.server = case.server
        self.base_url = f"{case.server.ws_url}/c/{case.token}"

    @abc.abstractmethod
    def start(self) -> None:
        """Set the test up on the server (a route, a recorder)."""

    @abc.abstractmethod
    def stop(self, passed: bool) -> str | None:
        """Close the test's connections (and save what was recorded); a failure report or None."""

    def cleanup(self) -> None:  # noqa: B027 - a hook: nothing to undo unless the run set something up
        """Undo :meth:`start`; always called, also when the test or :meth:`stop` failed."""

    def seen(self) -> list[Seen]:
        return []

    def journal(self) -> Journal:
        return Journal([SentEvent(s.id, j.at_ms, j.event, j.outcome, j.event_index) for s in self.seen() for j in s.journal])

    def played_sessions(self) -> set[int]:
        return {s.session for s in self.seen()}


class ReplayRun(Run):
    """The test's cassette on a route of its own on the shared server."""

    kind = "replay"

    def start(self) -> None:
        self.server.call(self._install, self.case.location.variants(self.case.config.dialect))

    def _install(self, files: list[str]) -> None:
        state = self.server.state
        state.reset()  # tests run one at a time per process: forget the previous test's connections
        state.library.register(self.case.token, files)
        state.routes[self.case.token] = self.case.config

    def _uninstall(self) -> None:
        state = self.server.state
        state.routes.pop(self.case.token, None)
        state.library.unregister(self.case.token)

    def stop(self, passed: bool) -> str | None:
        self.server.run(self._close_route())
        return None

    async def _close_route(self) -> None:
        state = self.server.state
        token = self.case.token
        sockets = [r.socket for r in state.connections if r.route == token and r.open and r.socket is not None]
        if sockets:
            await close_sockets(sockets, self.server.close_timeout_s)

    def cleanup(self) -> None:
        self.server.call(self._uninstall)

    def seen(self) -> list[Seen]:
        return self.server.call(snapshot, self.server.state, self.case.token)


class EpisodesRun(ReplayRun):
    """Replay, and record live what the cassette does not hold: the route gets an
    :class:`~mockrealtime.net.episodes.Episodes`, whose connections switch to the live API at their
    first divergence, and go live from the start beyond the recorded sessions."""

    kind = "episodes"

    def start(self) -> None:
        files = self.case.location.variants(self.case.config.dialect)
        cassettes = {c.dialect: c for c in (_cassette.load(f) for f in files)}
        config = dataclasses.replace(self.case.config, upstream_api_key=os.environ.get("OPENAI_API_KEY") or None)
        self.episodes = Episodes(config, cassettes)
        self.server.call(self._install, files)

    def _install(self, files: list[str]) -> None:
        super()._install(files)
        self.server.state.episodes[self.case.token] = self.episodes

    def _uninstall(self) -> None:
        self.server.state.episodes.pop(self.case.token, None)
        super()._uninstall()

    def stop(self, passed: bool) -> str | None:
        super().stop(passed)
        problems = self.server.run(self.episodes.close(self.server.close_timeout_s))
        if problems:
            return "mockrealtime new_episodes: " + "\n".join(problems)
        if not (passed or self.case.config.record_failed):
            return None
        try:
            self._save()
        except Exception as exc:  # a secret left, or I/O: nothing is written
            return f"mockrealtime new_episodes: the recording was not saved: {exc}"
        return None

    def _save(self) -> None:
        location = self.case.location
        label = self.episodes.upstream.label
        tmpdir = tempfile.mkdtemp(prefix="mockrealtime-episodes-")
        try:
            for dialect, (path, cassette) in self.episodes.cassettes(location.path_for, label).items():
                if location.bundled:  # never write into mockrealtime's own cassettes
                    path = location.path_for(dialect)
                target_dir = os.path.join(tmpdir, dialect)
                os.makedirs(target_dir)
                save_checked(cassette, os.path.join(target_dir, os.path.basename(path)), self.episodes.recorder.known_secrets)
                install_recording(target_dir, os.path.dirname(path))
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def seen(self) -> list[Seen]:
        def collect() -> list[Seen]:
            handed_over = {e.report_id for e in self.episodes.episodes if e.handed_over}
            return [s for s in snapshot(self.server.state, self.case.token) if s.id not in handed_over]

        return self.server.call(collect)

    def journal(self) -> Journal:
        def collect() -> list[SentEvent]:
            reports = {r.id: r for r in self.server.state.connections if r.route == self.case.token}
            out: list[SentEvent] = []
            for i, episode in enumerate(self.episodes.episodes):
                report = reports.get(episode.report_id) if episode.report_id is not None else None
                out += episode.journal(i, list(report.engine.journal) if report is not None else [])
            return out

        return Journal(self.server.call(collect))

    def played_sessions(self) -> set[int]:
        return super().played_sessions() | {e.session for e in self.episodes.episodes if e.session is not None}


class RecordRun(Run):
    """A recorder (:mod:`mockrealtime.net.record`) for the test, on the server's loop, writing into a
    private temporary directory; moved into place when the test passes (or ``record_failed``)."""

    kind = "record"
    judged = False
    tmpdir: str | None = None

    def start(self) -> None:
        config = self.case.config
        key = os.environ.get("OPENAI_API_KEY") or None
        if key is None and "api.openai.com" in config.upstream:
            raise ConfigError(f"record mode {config.record_mode} goes live and needs OPENAI_API_KEY in the environment")
        self.tmpdir = tempfile.mkdtemp(prefix="mockrealtime-")
        output = os.path.join(self.tmpdir, os.path.basename(self.case.location.path))
        if not output.endswith(EXTENSIONS):
            output += ".yaml"
        self.recording = recording_server(dataclasses.replace(config, output=output, upstream_api_key=key, host="127.0.0.1", port=0))
        self.base_url, self.handle = self.server.run(self.recording.__aenter__())
        self.handle.recorder.keep_client_frames = True  # for the journal, once parts are saved

    def stop(self, passed: bool) -> str | None:
        save = passed or self.case.config.record_failed
        try:
            self.server.run(self.recording.__aexit__(None, None, None))
        except Exception as exc:  # a secret left in the recording: nothing is saved
            return f"mockrealtime: the recording was not saved: {exc}" if save else None
        if not save:
            return None
        if not any(p.endswith(EXTENSIONS) for p in self.handle.saved_paths):
            return (
                "mockrealtime: nothing was recorded: no client connected to this test's endpoint "
                f"({self.base_url}/v1); point the client at realtime_case.websocket_base_url"
            )
        install_recording(self.tmpdir, os.path.dirname(self.case.location.path))  # type: ignore[arg-type]
        return None

    def cleanup(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def journal(self) -> Journal:
        recorder = self.handle.recorder
        recordings = self.server.call(lambda: [(r.index, r.client_frames + r.frames) for r in recorder.recordings])
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


# -- the modes ----------------------------------------------------------------------------------


class Mode(abc.ABC):
    """What a record mode runs a test on, given its cassette."""

    @abc.abstractmethod
    def run_for(self, case: Case) -> Run:
        """The run for this test (it may fail at once: no cassette and a mode that never goes live)."""


class NoneMode(Mode):
    """Replay; never go live. A missing cassette fails the test with the command that records it."""

    def run_for(self, case: Case) -> Run:
        if not case.location.exists:
            close = close_names(case.location.path)
            typo = f"\nA typo? Close names: {', '.join(close)}." if close else ""
            raise CassetteError(
                f"mockrealtime: no cassette at {display_path(case.location.path)}, and record mode "
                f"{case.config.record_mode.value!r} never goes live.{typo}\nRecord it: {rerecord_command(case.nodeid, 'once')}"
                " (the key comes from OPENAI_API_KEY)"
            )
        return ReplayRun(case)


class OnceMode(Mode):
    """Replay the cassette if it exists, else record it."""

    def run_for(self, case: Case) -> Run:
        return ReplayRun(case) if case.location.exists else RecordRun(case)


def _never_over_a_scenario(case: Case) -> None:
    """A scenario is compiled, never recorded over: the modes that would write to it refuse."""
    if case.location.scenario is not None:
        mode = case.config.record_mode.value
        raise CassetteError(
            f"mockrealtime: {display_path(case.location.scenario)} is a scenario: it is compiled, never recorded "
            f"over (record mode {mode!r}); use record mode 'none' or 'once', or name another cassette"
        )


class NewEpisodesMode(Mode):
    """Replay, and record what the cassette does not hold; record it whole if it is missing."""

    def run_for(self, case: Case) -> Run:
        _never_over_a_scenario(case)
        return EpisodesRun(case) if case.location.exists else RecordRun(case)


class AllMode(Mode):
    """Record every test, replacing its cassette."""

    def run_for(self, case: Case) -> Run:
        _never_over_a_scenario(case)
        return RecordRun(case)


class RewriteMode(Mode):
    """Delete the test's cassette (every variant and its audio), then record it."""

    def run_for(self, case: Case) -> Run:
        _never_over_a_scenario(case)
        remove_cassette(case.location)
        return RecordRun(case)


MODES: dict[RecordMode, Mode] = {
    RecordMode.NONE: NoneMode(),
    RecordMode.ONCE: OnceMode(),
    RecordMode.NEW_EPISODES: NewEpisodesMode(),
    RecordMode.ALL: AllMode(),
    RecordMode.REWRITE: RewriteMode(),
}
