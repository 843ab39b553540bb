"""Audio formats of the Realtime API, durations, and the WAV sidecar files cassettes keep audio in.

Only the standard library is used: WAV is a RIFF container with a ``fmt `` and a ``data`` chunk, and
G.711 is stored with its own format tags (7 = mu-law, 6 = A-law) so any audio tool can play it.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import tempfile
from collections.abc import Callable


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


def _ulaw_sample(u: int) -> int:
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def _alaw_sample(a: int) -> int:
    a ^= 0x55
    t, seg = (a & 0x0F) << 4, (a & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108) << max(seg - 1, 0)
    return t if a & 0x80 else -t


def _byte_tables(sample: Callable[[int], int]) -> tuple[bytes, bytes]:
    """Translation tables from a G.711 byte to the low and the high byte of its 16-bit sample."""
    words = [sample(b) & 0xFFFF for b in range(256)]
    return bytes(w & 0xFF for w in words), bytes(w >> 8 for w in words)


# ITU-T G.711 expansion (the reference decoder's arithmetic, as audioop had it). audioop left the
# standard library in Python 3.13 and no runtime dependency may replace it: two 256-byte tables.
_G711_TABLES = {G711_ULAW.name: _byte_tables(_ulaw_sample), G711_ALAW.name: _byte_tables(_alaw_sample)}


def to_pcm16(fmt: AudioFormat, data: bytes) -> tuple[AudioFormat, bytes]:
    """Audio as 16-bit linear PCM at its own rate, which every browser plays: G.711 is expanded."""
    tables = _G711_TABLES.get(fmt.name)
    if tables is None:
        return fmt, data
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(tables[0])
    out[1::2] = data.translate(tables[1])
    return AudioFormat(f"pcm16_{fmt.rate_hz}", fmt.rate_hz, 2, 1), bytes(out)


def parse_wav(blob: bytes) -> tuple[AudioFormat, bytes]:
    """Format and sample data of a WAV file held in memory; ValueError says what is wrong."""
    fmt, start, size = _walk_wav(lambda pos, n: blob[pos : pos + n], len(blob))
    return fmt, blob[start : start + size]


@dataclasses.dataclass(frozen=True, slots=True)
class WavInfo:
    """Where a WAV file's samples are: its format and the byte range of its ``data`` chunk."""

    format: AudioFormat
    data_offset: int
    data_length: int


def read_wav_header(path: str) -> WavInfo:
    """The format and data range of a WAV file, reading its chunk headers only (not the samples).

    ValueError says what is wrong (not a WAV, a truncated chunk, a data chunk past the file's end).
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size

        def read(pos: int, n: int) -> bytes:
            f.seek(pos)
            return f.read(n)

        fmt, start, length = _walk_wav(read, size)
    return WavInfo(fmt, start, length)


def _walk_wav(read: Callable[[int, int], bytes], size: int) -> tuple[AudioFormat, int, int]:
    head = read(0, 12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    fmt: AudioFormat | None = None
    while pos + 8 <= size:
        header = read(pos, 8)
        chunk_id = header[:4]
        (chunk_size,) = struct.unpack("<I", header[4:8])
        start = pos + 8
        if chunk_id == b"fmt ":
            if chunk_size < 16 or start + 16 > size:
                raise ValueError(f"truncated fmt chunk ({min(chunk_size, size - start)} bytes, need 16)")
            tag, channels, rate = struct.unpack("<HHI", read(start, 8))
            fmt = _BY_WAV_TAG.get(tag)
            if fmt is None or channels != 1 or rate != fmt.rate_hz:
                raise ValueError(
                    f"unsupported audio: format tag {tag}, {channels} channel(s), {rate} Hz "
                    "(expected mono pcm16 24000 Hz, or G.711 mu-law/A-law 8000 Hz)"
                )
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            if start + chunk_size > size:
                raise ValueError(f"truncated data chunk: it says {chunk_size} bytes but the file holds {size - start}")
            return fmt, start, chunk_size
        pos = start + chunk_size + (chunk_size % 2)
    raise ValueError("no data chunk")


def write_atomic(path: str, blob: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a half-written one."""
    tmp = write_beside(path, blob)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise


def write_beside(path: str, blob: bytes) -> str:
    """Write ``blob`` in full (synced) to a new hidden file beside ``path``, with the mode ``path`` has
    or would get; returns its name. Nothing is left behind if that fails."""
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
    except BaseException:
        unlink_quietly(tmp)
        raise
    return tmp


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def pread(fd: int, n: int, at: int) -> bytes:
    """``n`` bytes at ``at`` without moving the file position (where the OS offers it: not Windows)."""
    if hasattr(os, "pread"):
        return os.pread(fd, n, at)
    os.lseek(fd, at, os.SEEK_SET)  # one thread reads a sidecar at a time
    return os.read(fd, n)


def pwrite(fd: int, data: bytes | memoryview, at: int) -> int:
    """Write at ``at``; returns the bytes written (see :func:`pread`)."""
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, at)
    os.lseek(fd, at, os.SEEK_SET)
    return os.write(fd, data)


#: Wire text that events with sidecar audio may keep, in bytes, all cassettes of the process
#: together (about 23 minutes of pcm16 speech): a replay encodes each frame once, and the audio
#: of long calls beyond it is encoded each time it is sent instead of held in memory.
TEXT_CACHE_BYTES = 128 * 1024 * 1024
_text_cached = 0  # bytes held now, by the sidecars alive


class Sidecar:
    """A WAV file next to a cassette. Loading reads its header only; samples are read when sent.

    The file is opened on the first read and kept open, so a cassette replays the audio it loaded
    even if the file is replaced meanwhile (writers replace files, never rewrite them in place).
    """

    __slots__ = ("path", "info", "cached_bytes", "_fd", "__weakref__")

    def __init__(self, path: str, info: WavInfo | None = None) -> None:
        self._fd: int | None = None
        self.path = path
        self.info = info if info is not None else read_wav_header(path)
        #: Bytes of wire text built from this sidecar and kept by its events (see ``reserve``).
        self.cached_bytes = 0

    def reserve(self, n: int) -> bool:
        """Whether an event may keep ``n`` more bytes of wire text built from this sidecar (see
        :data:`TEXT_CACHE_BYTES`); given back when the sidecar goes (its cassette was dropped)."""
        global _text_cached
        if _text_cached + n > TEXT_CACHE_BYTES:
            return False
        _text_cached += n
        self.cached_bytes += n
        return True

    @property
    def format(self) -> AudioFormat:
        return self.info.format

    @property
    def size(self) -> int:
        """Bytes of samples (the ``data`` chunk)."""
        return self.info.data_length

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes of samples from ``offset`` (within the data chunk)."""
        if offset < 0 or offset + length > self.info.data_length:
            raise ValueError(f"{self.path}: bytes {offset}-{offset + length} are outside its {self.info.data_length} bytes of audio")
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        data = pread(self._fd, length, self.info.data_offset + offset)
        if len(data) != length:
            raise ValueError(f"{self.path}: the file was cut short while in use")
        return data

    def __del__(self) -> None:
        global _text_cached
        _text_cached -= getattr(self, "cached_bytes", 0)
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass


@dataclasses.dataclass(frozen=True, slots=True)
class AudioRef:
    """Where an event's audio lives: ``length`` bytes at ``offset`` in a sidecar's samples, sent
    base64-encoded in the event's ``field`` (``delta`` for server audio, ``audio`` for appends)."""

    sidecar: Sidecar
    offset: int
    length: int
    field: str

    @property
    def path(self) -> str:
        return self.sidecar.path

    @property
    def format(self) -> AudioFormat:
        return self.sidecar.format

    def read(self) -> bytes:
        return self.sidecar.read(self.offset, self.length)
