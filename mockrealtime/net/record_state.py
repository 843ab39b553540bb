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
import re
import threading
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from mockrealtime import __version__
from mockrealtime.core.cassette import cassette_name
from mockrealtime.core.recording import Recorder, Taken
from mockrealtime.core.redaction import KEY_SUBPROTOCOL, REDACTED, TRANSPORT_HEADERS, Redactor
from mockrealtime.errors import SecretLeftError
from mockrealtime.net.record_config import RecordConfig, _url_label, check_writable

log = logging.getLogger("mockrealtime.record")


class RecorderState:
    """Per-app state: the recorder, the upstream session, the live links, what was saved."""

    def __init__(self, config: RecordConfig, recorder: Recorder | None = None) -> None:
        config.check()
        check_writable(config.output)
        self.config = config
        self.upstream = URL(config.upstream)
        self.upstream_label = _url_label(config.upstream)
        self.fixed_path = self.upstream.path not in ("", "/")
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.recorder = recorder or Recorder(
            cassette_name(config.output),
            redactor=Redactor(config.redact_paths, config.redact_patterns),
            description=f"Recorded by mockrealtime {__version__} (mockrealtime record) from {self.upstream_label}, {stamp}.",
        )
        self.recorder.add_secret(config.api_key)
        for var in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"):  # scanned for if the environment has them
            self.recorder.add_secret(os.environ.get(var))
        self.http: aiohttp.ClientSession | None = None
        self.links: set[Any] = set()  # the relayed connections (net.record._Link)
        self.saved_paths: list[str] = []
        self.errors: list[Exception] = []
        self.last_error: Exception | None = None
        #: Where saves write while the app runs (one thread, so writes keep their order); None: here.
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._writing = threading.Lock()
        self.connections = 0

    def upstream_url(self, request: web.Request) -> URL:
        url = self.upstream if self.fixed_path else self.upstream.with_path(request.rel_url.raw_path, encoded=True)
        query = dict(self.upstream.query)
        query.update(request.query)
        return url.with_query(query)

    def forward_headers(self, headers: Mapping[str, str]) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        for name, value in headers.items():
            if name.lower() not in TRANSPORT_HEADERS:
                out.add(name, value)
        key = self.config.api_key
        if key:
            azure = "api-key" in out
            out.popall("Authorization", None)
            out.popall("api-key", None)
            if azure:
                out["api-key"] = key
            else:
                out["Authorization"] = f"Bearer {key}"
        return out

    def forward_protocols(self, offered: list[str]) -> list[str]:
        key = self.config.api_key
        if not key:
            return offered
        return [KEY_SUBPROTOCOL + key if p.startswith(KEY_SUBPROTOCOL) else p for p in offered]

    def describe(self, exc: BaseException) -> str:
        """An exception as it may be logged or saved: query strings and credentials removed."""
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        text = re.sub(r"\?[^\s'\"]*", "?" + REDACTED, text)
        for secret in sorted(self.recorder.known_secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, REDACTED)
        return self.recorder.redactor.scrub_text(text)

    def save(self) -> list[str]:
        """Save now, here (checked); raises SecretLeftError and I/O errors."""
        return self._write(self.recorder.take())

    async def save_quietly(self, checkpoint: bool = False) -> list[str]:
        """Save now, the writing in the worker thread (the loop keeps relaying meanwhile); a
        failure is logged and kept (``errors``, ``last_error``), never raised."""
        taken = self.recorder.take()  # here, on the loop, where the frames arrive
        if not taken:
            return []
        if self.pool is None:
            return self._write_quietly(taken, checkpoint)
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._write_quietly, taken, checkpoint)

    def _write(self, taken: list[Taken]) -> list[str]:
        with self._writing:  # one write at a time, whichever thread
            written = self.recorder.write(taken, self.config.output)
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
            self.errors.append(exc)
            self.last_error = exc
            log.error("mockrealtime record: %s", exc)
            return []
        except Exception as exc:  # a recorder must outlive a failed save (disk full, a bug)
            self.errors.append(exc)
            self.last_error = exc
            log.error("mockrealtime record: cannot save %s: %s", self.config.output, self.describe(exc))
            return []
        if written:
            log.log(logging.DEBUG if checkpoint else logging.INFO, "= saved %s", ", ".join(written))
        return written


RECORDER = web.AppKey("mockrealtime_recorder", RecorderState)


RECORDER = web.AppKey("mockrealtime_recorder", RecorderState)
