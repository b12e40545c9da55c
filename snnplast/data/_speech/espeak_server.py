"""A tiny eSpeak NG synthesis server, run as a separate script (never imported by the package).

Why a separate process, and a fork per utterance: eSpeak NG keeps synthesis state in C globals
(oscillator phases, pitch flutter, its noise generators) that no API call resets, so the same
request gives different audio depending on what was spoken before. Forking the freshly initialised
server for every request gives each utterance the same starting state: the output is a function of
the request alone. Running it as a script keeps JAX and its threads out of the forking process.

Usage: ``python espeak_server.py LIBRARY DATA_DIR``. Writes one JSON line
``{"ready": true, "sample_rate": R}`` (or ``{"ready": false, "error": ...}``), then answers each
request line ``{"text", "voice", "rate", "pitch", "range", "seed"}`` on stdin with a JSON header
line ``{"ok": true, "n": N}`` followed by ``2 N`` bytes of native int16 samples, or
``{"ok": false, "error": ...}``.
"""

import ctypes
import json
import os
import sys

# speak_lib.h
_SYNCHRONOUS = 2
_DONT_EXIT = 0x8000
_RATE, _PITCH, _RANGE = 1, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
# Child exit codes.
_EXIT_VOICE, _EXIT_SYNTH = 3, 4

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _load(library: str, data: str):
    lib = ctypes.CDLL(library)
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, data.encode(), _DONT_EXIT)
    if rate <= 0:
        raise RuntimeError(f"espeak_Initialize failed with data folder {data}")
    return lib, rate


def _speak(lib, request: dict, out_fd: int) -> int:
    """Runs in the forked child: synthesise one request and write its samples to `out_fd`."""
    chunks = []

    def collect(wav, n, events):
        if wav and n > 0:
            chunks.append(ctypes.string_at(wav, 2 * n))
        return 0

    callback = _CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(request["voice"].encode()) != 0:
        return _EXIT_VOICE
    lib.espeak_SetParameter(_RATE, int(request["rate"]), 0)
    lib.espeak_SetParameter(_PITCH, int(request["pitch"]), 0)
    lib.espeak_SetParameter(_RANGE, int(request["range"]), 0)
    # eSpeak draws breath and frication noise from its own generator and from libc's rand().
    seed = int(request["seed"])
    lib.espeak_ng_SetRandSeed(seed)
    ctypes.CDLL(None).srand(ctypes.c_uint(seed))
    text = request["text"].encode() + b"\0"
    if lib.espeak_Synth(text, len(text), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
        return _EXIT_SYNTH
    lib.espeak_Synchronize()
    data = b"".join(chunks)
    view = memoryview(data)
    while view:
        view = view[os.write(out_fd, view) :]
    return 0


def _serve(lib, stdin, stdout) -> None:
    for line in stdin:
        request = json.loads(line)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            code = 1
            try:
                code = _speak(lib, request, write_fd)
            finally:
                os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            header = {"ok": True, "n": len(data) // 2}
        elif code == _EXIT_VOICE:
            header = {"ok": False, "error": f"eSpeak NG has no voice {request['voice']!r}"}
        else:
            header = {"ok": False, "error": f"eSpeak NG synthesis failed (exit code {code})"}
        stdout.write(json.dumps(header).encode() + b"\n")
        if code == 0:
            stdout.write(data[: 2 * header["n"]])
        stdout.flush()


def main(argv) -> int:
    stdout = sys.stdout.buffer
    try:
        lib, rate = _load(argv[1], argv[2])
    except (OSError, RuntimeError, AttributeError, IndexError) as e:
        stdout.write(json.dumps({"ready": False, "error": str(e)}).encode() + b"\n")
        stdout.flush()
        return 1
    stdout.write(json.dumps({"ready": True, "sample_rate": rate}).encode() + b"\n")
    stdout.flush()
    _serve(lib, sys.stdin.buffer, stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
