"""Deterministic material for compiled scenarios: ids, timing jitter, voices, G.711, an energy VAD.

Nothing here draws on ``random`` or the clock: ids are hashes of (scenario, dialect, session,
counter), jitter comes from a seeded linear congruential generator, and audio is built from a small
bank of syllables rendered once per voice, so a scenario compiles to the same bytes every time.

Audio is rendered at 24 kHz and stored per wire format (pcm16, or G.711 at 8 kHz after taking
every third sample); utterances are byte concatenations of syllables and pauses, which keeps a
several-minute call cheap to build.
"""

from __future__ import annotations

import functools
import hashlib
import math
import string
import sys
from array import array

from mockrealtime.core import audio as _audio

_ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase
RATE_HZ = 24_000
FRAME_MS = 20  # VAD frames and microphone chunks


def _b62(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_ALNUM[r])
    return "".join(out)


def digest(*parts: object) -> str:
    return _b62(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest())


def seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


class Lcg:
    """Knuth's MMIX linear congruential generator: deterministic, no global state."""

    def __init__(self, seed_value: int) -> None:
        self._state = seed_value & 0xFFFF_FFFF_FFFF_FFFF

    def next(self) -> float:
        """A float in [0, 1)."""
        self._state = (self._state * 6364136223846793005 + 1442695040888963407) & 0xFFFF_FFFF_FFFF_FFFF
        return (self._state >> 11) / float(1 << 53)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.next()


class Ids:
    """Realistic ids: ``item_`` + 21 characters sharing a time-like head within a session."""

    def __init__(self, namespace: str) -> None:
        self._ns = namespace
        self._head = "C" + digest(namespace, "head")[:3]
        self._n = 0

    def new(self, prefix: str) -> str:
        self._n += 1
        tail = digest(self._ns, prefix, self._n)
        if prefix == "call":  # call ids are 16 random-looking characters, no time head
            return f"call_{tail[:16]}"
        return f"{prefix}_{self._head}{tail[:17]}"


# -- G.711 ----------------------------------------------------------------------------------------


def _ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (min(exponent, 7) << 4) | mantissa) & 0xFF


def _alaw(sample: int) -> int:
    sign = 0x00 if sample < 0 else 0x80
    magnitude = min(-sample if sample < 0 else sample, 32767) >> 3
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = min(7, magnitude.bit_length() - 5)
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def encode(samples: array, fmt: _audio.AudioFormat) -> bytes:
    """24 kHz int16 samples in a wire format (G.711 keeps every third sample: 8 kHz)."""
    if fmt is _audio.PCM16:
        if sys.byteorder == "big":  # pragma: no cover - the wire is little-endian
            samples = array("h", samples)
            samples.byteswap()
        return samples.tobytes()
    law = _ulaw if fmt is _audio.G711_ULAW else _alaw
    return bytes(law(s) for s in samples[::3])


def decode(data: bytes, fmt: _audio.AudioFormat) -> array:
    """Wire audio back to int16 samples at the format's own rate (G.711 expanded by core.audio)."""
    _, pcm = _audio.to_pcm16(fmt, data)
    out = array("h")
    out.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":  # pragma: no cover - the wire is little-endian
        out.byteswap()
    return out


def convert(data: bytes, source: _audio.AudioFormat, target: _audio.AudioFormat) -> bytes:
    """Audio from a WAV file in the session's input format (resampling 24 kHz <-> 8 kHz crudely)."""
    if source is target:
        return data
    samples = decode(data, source)
    if source is not _audio.PCM16:  # 8 kHz -> 24 kHz by repetition
        samples = array("h", (s for s in samples for _ in range(3)))
    return encode(samples, target)


# -- voices -----------------------------------------------------------------------------------------


@functools.cache
def _wavetable(size: int = 2048) -> tuple[float, ...]:
    """One period of a vowel-like tone: falling harmonics with a formant bump."""
    amps = [1.0 / k**1.1 * (1.0 + 1.6 * math.exp(-((k - 4) ** 2) / 2.0)) for k in range(1, 11)]
    raw = [sum(a * math.sin(2 * math.pi * k * i / size) for k, a in enumerate(amps, 1)) for i in range(size)]
    peak = max(abs(v) for v in raw)
    return tuple(v / peak for v in raw)


def _clip(values: list[float]) -> array:
    return array("h", (max(-32768, min(32767, int(v))) for v in values))


@functools.cache
def _noise(fmt_name: str, level: float) -> bytes:
    """One second of room noise (level 0: digital silence) in a wire format."""
    rng = Lcg(seed("noise", level))
    samples = _clip([level * (rng.next() - 0.5) for _ in range(RATE_HZ)])
    return encode(samples, _audio.FORMATS[fmt_name])


@functools.cache
def _syllables(fmt_name: str, f0: float, noise: float) -> tuple[bytes, ...]:
    """Twelve syllables of a voice: a rise, a hold and a fall of a harmonic tone, 140-260 ms each."""
    table = _wavetable()
    size = len(table)
    rng = Lcg(seed("voice", f0))
    out = []
    for k in range(12):
        n = int(RATE_HZ * rng.uniform(0.14, 0.26)) // 24 * 24  # whole G.711 samples at 8 kHz
        loud = 3200.0 * rng.uniform(0.7, 1.0)
        pitch = f0 * rng.uniform(0.9, 1.1)
        phase = rng.uniform(0, size)
        values = []
        for j in range(n):
            phase += pitch * (1.0 + 0.05 * math.sin(2 * math.pi * 1.3 * j / RATE_HZ + k)) * size / RATE_HZ
            values.append(math.sin(math.pi * j / n) ** 0.6 * loud * table[int(phase) % size] + noise * (rng.next() - 0.5))
        out.append(encode(_clip(values), _audio.FORMATS[fmt_name]))
    return tuple(out)


def _silence(fmt: _audio.AudioFormat, ms: int, noise: float, offset: int) -> bytes:
    block = _noise(fmt.name, noise)
    n = round(ms * fmt.bytes_per_ms)
    start = offset % len(block)
    out = bytearray()
    while len(out) < n:
        out += block[start : start + n - len(out)]
        start = 0
    return bytes(out)


def utterance(fmt: _audio.AudioFormat, ms: int, key: str, *, f0: float, noise: float = 0.0, lead_ms: int = 0) -> bytes:
    """``ms`` of audio: ``lead_ms`` of quiet, then syllables with short pauses, then quiet to the end."""
    rng = Lcg(seed("utterance", key))
    sample = fmt.bytes_per_sample
    total = round(ms * fmt.bytes_per_ms) // sample * sample
    bank = _syllables(fmt.name, f0, noise)
    out = bytearray(_silence(fmt, lead_ms, noise, 0))
    end_voice = total - round(40 * fmt.bytes_per_ms)
    while True:
        syllable = bank[int(rng.next() * len(bank))]
        if len(out) + len(syllable) > end_voice:
            break
        out += syllable
        pause = rng.uniform(90, 160) if rng.next() < 0.2 else rng.uniform(15, 50)
        out += _silence(fmt, int(pause), noise, len(out))
    out += _silence(fmt, ms, noise, len(out))
    return bytes(out[:total])


def quiet(fmt: _audio.AudioFormat, ms: int, noise: float, offset: int = 0) -> bytes:
    return _silence(fmt, ms, noise, offset)


# -- VAD --------------------------------------------------------------------------------------------

#: Mean absolute amplitude (int16 scale) above which a 20 ms frame counts as speech.
VAD_LEVEL = 300


def voiced_span(data: bytes, fmt: _audio.AudioFormat) -> tuple[int, int] | None:
    """(first, last) ms of speech in ``data``, to the 20 ms frame, or None if there is none."""
    samples = decode(data, fmt)
    per_frame = fmt.rate_hz * FRAME_MS // 1000
    voiced = [
        i for i in range(len(samples) // per_frame)
        if sum(map(abs, samples[i * per_frame : (i + 1) * per_frame])) / per_frame > VAD_LEVEL
    ]
    if not voiced:
        return None
    return voiced[0] * FRAME_MS, (voiced[-1] + 1) * FRAME_MS
