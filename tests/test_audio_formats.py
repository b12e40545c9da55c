"""Recordings as people have them: several channels, FLAC/Ogg/AIFF as well as WAV. Every file is
synthesised here."""

import h5py
import numpy as np
import pytest
import soundfile
from wav_files import RATE, write_tone

from snnplast.data import convert_audio, read_audio, read_wav
from snnplast.data._cochlea.cochlea import Cochlea
from snnplast.data._recordings.convert import find_recordings


def tone(seconds=0.05, f0=150.0, seed=0):
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    return 0.3 * x / np.abs(x).max() + 0.003 * np.random.default_rng(seed).standard_normal(t.size)


def test_several_channels_are_mixed_down(tmp_path):
    left, right = tone(seed=0), 0.5 * tone(f0=220.0, seed=1)
    stereo = np.stack([left, right], axis=1)
    for subtype, step in (("PCM_16", 2.0**-15), ("PCM_24", 2.0**-23), ("FLOAT", 1e-7)):
        path = tmp_path / f"stereo_{subtype}.wav"
        soundfile.write(path, stereo, RATE, subtype=subtype)
        x, rate = read_wav(path)
        assert rate == RATE and x.shape == (left.size,)
        # The mean of the channels, each rounded to the file's resolution.
        np.testing.assert_allclose(x, (left + right) / 2, rtol=0, atol=step)
        y, _ = read_audio(path)
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("suffix, subtype", [(".flac", "PCM_16"), (".aiff", "PCM_16")])
def test_lossless_formats_read_as_the_same_wav(tmp_path, suffix, subtype):
    wav = tmp_path / "a.wav"
    write_tone(wav)
    samples, rate = read_wav(wav)
    other = tmp_path / f"a{suffix}"
    soundfile.write(other, samples, rate, subtype=subtype)
    x, rate2 = read_audio(other)
    assert rate2 == rate
    np.testing.assert_array_equal(x, samples)


def test_ogg_vorbis_reads_close_to_the_wav(tmp_path):
    x0 = tone(seconds=0.5)
    path = tmp_path / "a.ogg"
    soundfile.write(path, x0, RATE, format="OGG", subtype="VORBIS")
    x, rate = read_audio(path)
    assert rate == RATE and abs(x.size - x0.size) < 0.01 * x0.size
    n = min(x.size, x0.size)
    assert np.corrcoef(x[:n], x0[:n])[0, 1] > 0.95  # lossy, but the same waveform


@pytest.mark.skipif("MP3" not in soundfile.available_formats(), reason="libsndfile < 1.1")
@pytest.mark.parametrize("rate", [8000, 44100])
def test_stereo_mp3_reads_close_to_the_wav(tmp_path, rate):
    # A phone's or a recorder's take: MP3 at its own rate, the voice on both channels.
    t = np.arange(int(0.3 * rate)) / rate
    x0 = 0.3 * np.sin(2 * np.pi * 220 * t) * np.hanning(t.size)
    path = tmp_path / "take.MP3"
    soundfile.write(path, np.stack([x0, x0], axis=1), rate, format="MP3")
    x, got = read_audio(path)
    assert got == rate and x.size == x0.size
    assert np.corrcoef(x, x0)[0, 1] > 0.99  # lossy, but the same waveform, one channel


def test_bad_audio_files_are_one_line(tmp_path):
    (tmp_path / "a.flac").write_bytes(b"fLaC but not really")
    (tmp_path / "a.m4a").write_bytes(b"\0\0\0 ftypM4A")
    with pytest.raises(ValueError, match=r"a\.flac: not a readable \.flac file") as e:
        read_audio(tmp_path / "a.flac")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"a\.m4a: not an audio file; supported: .*\.flac"):
        read_audio(tmp_path / "a.m4a")
    with pytest.raises(FileNotFoundError):
        read_audio(tmp_path / "absent.wav")


def test_layouts_take_every_audio_format(tmp_path):
    write_tone(tmp_path / "yes" / "a_nohash_0.wav")
    (tmp_path / "no").mkdir()
    soundfile.write(tmp_path / "yes" / "b_nohash_0.flac", tone(), RATE)
    soundfile.write(tmp_path / "no" / "c_nohash_0.ogg", tone(), RATE, subtype="VORBIS")
    soundfile.write(tmp_path / "no" / "d_nohash_0.aiff", tone(), RATE)
    found = [(r.name, r.label, r.speaker) for r in find_recordings(tmp_path)]
    assert found == [
        ("no/c_nohash_0.ogg", "no", "c"),
        ("no/d_nohash_0.aiff", "no", "d"),
        ("yes/a_nohash_0.wav", "yes", "a"),
        ("yes/b_nohash_0.flac", "yes", "b"),
    ]


@pytest.mark.slow
def test_convert_audio_reads_flac_and_stereo_like_mono_wav(tmp_path):
    """A two-channel copy (the same take on both channels) of a mono WAV file converts to the
    same spikes; a FLAC copy to the same labels and, the cochlea's noise being seeded by the
    file's name, to nearly as many spikes in each channel."""
    wavs, others = tmp_path / "wav", tmp_path / "other"
    for name, f0 in (("3_speaker_1", 150.0), ("4_speaker_2", 210.0)):
        write_tone(wavs / f"{name}.wav", f0=f0)
    others.mkdir()
    x, rate = read_wav(wavs / "3_speaker_1.wav")
    soundfile.write(others / "3_speaker_1.flac", x, rate, subtype="PCM_16")
    y, rate = read_wav(wavs / "4_speaker_2.wav")
    soundfile.write(others / "4_speaker_2.wav", np.stack([y, y], axis=1), rate, subtype="PCM_16")
    kw = {"model": Cochlea(), "workers": 1, "progress": False}
    a = convert_audio(wavs, tmp_path / "wav.h5", **kw)
    b = convert_audio(others, tmp_path / "other.h5", **kw)
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert list(fa["labels"][()]) == list(fb["labels"][()]) == [3, 4]
        assert list(fa["extra/speaker"][()]) == list(fb["extra/speaker"][()]) == [1, 2]
        # The stereo file: the same name, so the same noise, so the same spikes.
        np.testing.assert_array_equal(fa["spikes/units"][1], fb["spikes/units"][1])
        np.testing.assert_array_equal(fa["spikes/times"][1], fb["spikes/times"][1])
        # The FLAC file: the same audio under other noise.
        ca = np.bincount(fa["spikes/units"][0] // 50, minlength=14)
        cb = np.bincount(fb["spikes/units"][0] // 50, minlength=14)
        assert ca.sum() > 500 and np.corrcoef(ca, cb)[0, 1] > 0.95
        assert abs(int(ca.sum()) - int(cb.sum())) < 0.05 * ca.sum()


@pytest.mark.slow
def test_show_draws_a_recording_through_the_cochlea(tmp_path, capsys):
    from snnplast._cli import main

    path = tmp_path / "7_ann_0.flac"
    soundfile.write(path, np.stack([tone(), tone()], axis=1), RATE)
    out = tmp_path / "seven.png"
    assert main(["data", "show", str(path), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(out) in capsys.readouterr().out
    assert main(["data", "show", str(path), "--index", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--index 1: an audio file holds one recording" in err and "\n" not in err
