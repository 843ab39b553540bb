"""Audio formats of the Realtime API, durations, and the WAV sidecar files cassettes keep audio in.

Only the standard library is used: WAV is a RIFF container with a ``fmt `` and a ``data`` chunk, and
G.711 is stored with its own format tags (7 = mu-law, 6 = A-law) so any audio tool can play it.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import tempfile


@dataclasses.dataclass(frozen=True, slots=True)
class AudioFormat:
    name: str  # the beta wire name, used in cassettes
    rate_hz: int
    bytes_per_sample: int
    wav_tag: int
    bytes_per_ms: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        # stored, not computed per call: every audio delta and append asks for a duration
        object.__setattr__(self, "bytes_per_ms", self.rate_hz * self.bytes_per_sample / 1000.0)

    def duration_ms(self, n_bytes: int) -> float:
        return n_bytes / self.bytes_per_ms


PCM16 = AudioFormat("pcm16", 24000, 2, 1)
G711_ULAW = AudioFormat("g711_ulaw", 8000, 1, 7)
G711_ALAW = AudioFormat("g711_alaw", 8000, 1, 6)
FORMATS = {f.name: f for f in (PCM16, G711_ULAW, G711_ALAW)}
_BY_WAV_TAG = {f.wav_tag: f for f in FORMATS.values()}
_GA_TYPES = {"audio/pcm": PCM16, "audio/pcmu": G711_ULAW, "audio/pcma": G711_ALAW}


def format_from_wire(value: object) -> AudioFormat | None:
    """The format named by a beta string (``"g711_ulaw"``) or a GA object (``{"type": "audio/pcmu"}``)."""
    if isinstance(value, str):
        return FORMATS.get(value)
    if isinstance(value, dict):
        return _GA_TYPES.get(value.get("type"))  # type: ignore[arg-type]
    return None


def session_formats(session: dict) -> tuple[AudioFormat | None, AudioFormat | None]:
    """(input, output) formats a ``session`` object sets, in either dialect; None where it is silent."""
    audio = session.get("audio")
    if isinstance(audio, dict):
        inp = (audio.get("input") or {}).get("format")
        out = (audio.get("output") or {}).get("format")
        return format_from_wire(inp), format_from_wire(out)
    return (
        format_from_wire(session.get("input_audio_format")),
        format_from_wire(session.get("output_audio_format")),
    )


def b64_decoded_len(data: str) -> int:
    """Bytes a base64 string decodes to, without decoding it (the append hot path)."""
    n = len(data)
    if n == 0:
        return 0
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return n * 3 // 4 - pad


def wav_bytes(fmt: AudioFormat, data: bytes) -> bytes:
    """A complete WAV file holding ``data`` in ``fmt`` (mono)."""
    block_align = fmt.bytes_per_sample
    bits = 8 * fmt.bytes_per_sample
    fmt_chunk = struct.pack(
        "<HHIIHH", fmt.wav_tag, 1, fmt.rate_hz, fmt.rate_hz * block_align, block_align, bits
    )
    if fmt.wav_tag != 1:
        fmt_chunk += struct.pack("<H", 0)  # cbSize: non-PCM formats carry an extension size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
    body += b"data" + struct.pack("<I", len(data)) + data
    if len(data) % 2:
        body += b"\x00"  # RIFF chunks are word-aligned
    return b"RIFF" + struct.pack("<I", len(body)) + body


def parse_wav(blob: bytes) -> tuple[AudioFormat, bytes]:
    """Format and sample data of a WAV file; ValueError says what is wrong."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    fmt: AudioFormat | None = None
    while pos + 8 <= len(blob):
        chunk_id = blob[pos : pos + 4]
        (size,) = struct.unpack_from("<I", blob, pos + 4)
        start = pos + 8
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", blob, start)
            fmt = _BY_WAV_TAG.get(tag)
            if fmt is None or channels != 1 or rate != fmt.rate_hz:
                raise ValueError(
                    f"unsupported audio: format tag {tag}, {channels} channel(s), {rate} Hz "
                    "(expected mono pcm16 24000 Hz, or G.711 mu-law/A-law 8000 Hz)"
                )
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            return fmt, blob[start : start + size]
        pos = start + size + (size % 2)
    raise ValueError("no data chunk")


def write_atomic(path: str, blob: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a half-written one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)  # mkstemp makes 0600; a cassette is shared like any source file
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
