#!/usr/bin/python3
"""The reprocess benchmark's audio: N files of S seconds, 48 kHz 16-bit stereo WAV.

Usage: reprocess_audio.py N SECONDS DIR [K OF]

(with K OF, only the files i with i % OF == K: OF processes make them together)
Writes DIR/u00/take-000.wav ... (ten files a folder) and prints one line per
file, "relative-path<TAB>bytes". Every file has its own mix, so the
analysis does not see one signal 200 times: noise whose tilt lies between
white and (high-passed) brown, a tone with two harmonics at its own pitch
and place in the stereo field, a tremolo of its own rate and depth, and
sections of 5 to 30 s at levels up to 12 dB apart (which give the loudness
range something to measure); one file in five has short transients near
full scale (which the true-peak shortcut must not skip). Deterministic: the
same N and SECONDS give the same bytes. numpy only, so that generation is
not what the benchmark waits for.
"""
import os
import sys
import wave

import numpy as np

RATE = 48000


def one_file(rng, seconds):
    n = int(seconds * RATE)
    t = np.arange(n, dtype=np.float32) / RATE
    chans = []
    tilt = rng.uniform(0, 1)
    pitch = rng.uniform(55, 880)
    pan = rng.uniform(0.2, 0.8)
    tone_level = rng.uniform(0.0, 0.6)
    tone = (np.sin(2 * np.pi * pitch * t) + 0.5 * np.sin(4 * np.pi * pitch * t)
            + 0.25 * np.sin(6 * np.pi * pitch * t)).astype(np.float32) / 1.75
    for c in range(2):
        white = rng.standard_normal(n, dtype=np.float32)
        # Brown noise high-passed: the running sum minus its 50 ms moving average.
        brown = np.cumsum(white, dtype=np.float64)
        w = RATE // 20
        avg = np.empty_like(brown)
        avg[w:] = (brown[w:] - brown[:-w]) / w
        avg[:w] = brown[:w] / np.arange(1, w + 1)
        brown = (brown - avg).astype(np.float32)
        brown /= np.float32(np.std(brown) + 1e-9)
        x = (1 - tilt) * white + tilt * brown
        x = x / np.float32(3.0) + np.float32(tone_level * (pan if c == 0 else 1 - pan)) * tone
        chans.append(x)
    # The tremolo and the sections' levels, shared by both channels.
    rate, depth = rng.uniform(0.2, 8), rng.uniform(0, 0.8)
    env = (1 - depth / 2 + depth / 2 * np.sin(2 * np.pi * rate * t)).astype(np.float32)
    start = 0
    while start < n:
        length = int(rng.uniform(5, 30) * RATE)
        env[start:start + length] *= np.float32(10 ** (rng.uniform(-12, 0) / 20))
        start += length
    level = np.float32(10 ** (rng.uniform(-20, -6) / 20))
    out = np.stack(chans, axis=1) * (env * level)[:, None]
    if rng.uniform() < 0.2:
        for at in rng.integers(0, n - 64, size=8):
            out[at:at + 16] = np.float32(rng.uniform(0.7, 0.98))
    np.clip(out, -1, 32767 / 32768, out=out)
    return (out * 32768).astype("<i2")


def main():
    if len(sys.argv) not in (4, 6):
        sys.exit("usage: reprocess_audio.py N SECONDS DIR [K OF]")
    count, seconds, root = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    k, of = (int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) == 6 else (0, 1)
    for i in range(k, count, of):
        rng = np.random.default_rng([20261130, i])
        rel = "u%02d/take-%03d.wav" % (i // 10, i)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        samples = one_file(rng, seconds)
        with wave.open(path, "wb") as f:
            f.setnchannels(2)
            f.setsampwidth(2)
            f.setframerate(RATE)
            f.writeframes(samples.tobytes())
        print("%s\t%d" % (rel, os.path.getsize(path)), flush=True)


if __name__ == "__main__":
    main()
