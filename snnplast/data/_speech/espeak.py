"""eSpeak NG from the ``espeakng-loader`` wheel, driven through a private server process.

The wheel bundles ``libespeak-ng`` and its voice data, so nothing comes from the operating system
or the network. eSpeak NG is GPL-3 and an optional extra (``pip install 'snnplast[speech]'``); it
is loaded only here, in a child process (see :mod:`.espeak_server` for why).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Self

import numpy as np

from ..._errors import ValidationError

INSTALL_HINT = "pip install 'snnplast[speech]' (installs espeakng-loader)"


class SpeechUnavailableError(ValueError):
    """eSpeak NG cannot be used here: the optional package is missing or the library won't load.

    A `ValueError`, like the package's other bad-input errors, so that the command line reports it
    in one line (with the install command) wherever speech is needed, ``snnplast train`` included.
    """


def espeak_paths() -> tuple[str, str]:
    """``(library, data folder)`` of the bundled eSpeak NG.

    **Raises:** :class:`SpeechUnavailableError` with the install command when the package is absent.
    """
    try:
        import espeakng_loader
    except ImportError as e:
        raise SpeechUnavailableError(
            f"speech synthesis needs eSpeak NG, which is not installed: {INSTALL_HINT}"
        ) from e
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class Espeak:
    """A running eSpeak NG synthesiser; use as a context manager or call :meth:`close`.

    Each request is synthesised from the same freshly initialised state, so the audio depends only
    on the request, never on what was synthesised before or in which order.
    """

    def __init__(self):
        if not hasattr(os, "fork"):
            raise SpeechUnavailableError(
                "speech synthesis needs os.fork (Linux or macOS); this platform has none"
            )
        library, data = espeak_paths()
        server = Path(__file__).with_name("espeak_server.py")
        self._proc = subprocess.Popen(
            [sys.executable, "-I", str(server), library, data],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        hello = self._header()
        if not hello.get("ready"):
            self.close()
            raise SpeechUnavailableError(f"eSpeak NG did not start: {hello.get('error')}")
        self.sample_rate: int = int(hello["sample_rate"])

    def _header(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise SpeechUnavailableError(
                "eSpeak NG server stopped unexpectedly" + (f": {err[-1]}" if err else "")
            )
        return json.loads(line)

    def synthesize(
        self,
        text: str,
        voice: str,
        *,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        seed: int = 0,
    ) -> np.ndarray:
        """Speak `text`.

        **Arguments:**

        - `text`: UTF-8 text.
        - `voice`: an eSpeak NG voice name, optionally with a variant: ``"en-us"``, ``"de+f2"``.
        - `rate`: speed in words per minute (80..450).
        - `pitch`: base pitch 0..99.
        - `pitch_range`: pitch range 0..99 (0 is monotone).
        - `seed`: seeds eSpeak's noise generators (breath, frication).

        **Returns:** ``[N]`` int16 samples at :attr:`sample_rate`.
        """
        for name, value, lo, hi in (
            ("rate", rate, 80, 450), ("pitch", pitch, 0, 99), ("pitch_range", pitch_range, 0, 99),
        ):  # fmt: skip
            if not lo <= int(value) <= hi:
                raise ValidationError(f"{name} must be in {lo}..{hi}, got {value!r}")
        request = {
            "text": text, "voice": voice, "rate": int(rate), "pitch": int(pitch),
            "range": int(pitch_range), "seed": int(seed) % 2**31,
        }  # fmt: skip
        if self._proc.poll() is not None:
            raise SpeechUnavailableError("eSpeak NG server is not running")
        self._proc.stdin.write(json.dumps(request).encode() + b"\n")
        self._proc.stdin.flush()
        header = self._header()
        if not header["ok"]:
            raise ValueError(header["error"])
        data = self._proc.stdout.read(2 * header["n"])
        return np.frombuffer(data, dtype=np.int16).copy()

    def close(self) -> None:
        proc = self._proc
        try:
            proc.stdin.close()
        except OSError:
            pass  # the server is gone already
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
