"""Record mode's per-app state: the configuration, the recorder, the upstream, what was saved.

Saving lives here: :meth:`RecorderState.save_quietly` takes what is new from the recorder on the
event loop and appends it to the cassette (see :mod:`mockrealtime.core.cassette_appender`) in a
worker thread, so a checkpoint of a long call never holds up the relay; it logs a failure instead
of raising, so a recorder outlives a failed save. :meth:`RecorderState.save` does the same here and
raises.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import os
import tempfile
import threading

import aiohttp
from aiohttp import web

from mockrealtime import __version__
from mockrealtime.config import ServerConfig
from mockrealtime.core.cassette import cassette_name
from mockrealtime.core.recording import Recorder, Taken
from mockrealtime.core.redaction import Redactor
from mockrealtime.errors import ConfigError, SecretLeftError
from mockrealtime.net.upstream import Relay, Upstream, describe

log = logging.getLogger("mockrealtime.record")


def check_writable(output: str) -> None:
    """Refuse (ConfigError) an output the recorder could not save to: found out at start, not
    after the first session is lost."""
    directory = os.path.dirname(os.path.abspath(output))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".mockrealtime-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"cannot write the output cassette {output!r}: {exc.strerror or exc} ({directory})") from None
    if os.path.isdir(output):
        raise ConfigError(f"cannot write the output cassette {output!r}: it is a directory")


class RecorderState:
    """Per-app state: the recorder, the upstream (:class:`~mockrealtime.net.upstream.Upstream`), the
    live relays, what was saved."""

    def __init__(self, config: ServerConfig, recorder: Recorder | None = None) -> None:
        if config.output is None:
            raise ConfigError("record mode needs an output cassette (--output PATH)")
        config.check()
        check_writable(config.output)
        self.config = config
        self.output: str = config.output
        self.upstream = Upstream(config)
        self.upstream_label = self.upstream.label
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.recorder = recorder or Recorder(
            cassette_name(config.output),
            redactor=Redactor(config.redact_paths, config.redact_patterns),
            description=f"Recorded by mockrealtime {__version__} (mockrealtime record) from {self.upstream_label}, {stamp}.",
        )
        self.recorder.add_secret(config.upstream_api_key)
        for var in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"):  # scanned for if the environment has them
            self.recorder.add_secret(os.environ.get(var))
        self.http: aiohttp.ClientSession | None = None
        self.links: set[Relay] = set()
        self.saved_paths: list[str] = []
        self.last_error: Exception | None = None
        #: Where saves write while the app runs (one thread, so writes keep their order); None: here.
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._writing = threading.Lock()
        self.connections = 0

    def describe(self, exc: BaseException) -> str:
        """An exception as it may be logged or saved: query strings and credentials removed."""
        return describe(exc, self.recorder.known_secrets, self.recorder.redactor)

    def save(self) -> list[str]:
        """Save now, here (checked); raises SecretLeftError and I/O errors."""
        return self._write(self.recorder.take())

    async def save_quietly(self, checkpoint: bool = False) -> list[str]:
        """Save now, the writing in the worker thread (the loop keeps relaying meanwhile); a
        failure is logged and kept (``last_error``), never raised."""
        taken = self.recorder.take()  # here, on the loop, where the frames arrive
        if not taken:
            return []
        if self.pool is None:
            return self._write_quietly(taken, checkpoint)
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._write_quietly, taken, checkpoint)

    def _write(self, taken: list[Taken]) -> list[str]:
        with self._writing:  # one write at a time, whichever thread
            written = self.recorder.write(taken, self.output)
        for path in written:
            if path not in self.saved_paths:
                self.saved_paths.append(path)
        if not isinstance(self.last_error, SecretLeftError):
            self.last_error = None  # what failed to write was kept and is saved now; a refused session is lost
        return written

    def _write_quietly(self, taken: list[Taken], checkpoint: bool) -> list[str]:
        try:
            written = self._write(taken)
        except SecretLeftError as exc:
            self.last_error = exc
            log.error("mockrealtime record: %s", exc)
            return []
        except Exception as exc:  # a recorder must outlive a failed save (disk full, a bug)
            self.last_error = exc
            log.error("mockrealtime record: cannot save %s: %s", self.output, self.describe(exc))
            return []
        if written:
            log.log(logging.DEBUG if checkpoint else logging.INFO, "= saved %s", ", ".join(written))
        return written


RECORDER = web.AppKey("mockrealtime_recorder", RecorderState)
