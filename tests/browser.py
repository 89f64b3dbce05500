"""Screenshots of report pages in a real headless Chromium, decoded to pixels without Pillow.

``make install`` installs Chromium from Debian's packages where apt-get exists; elsewhere the tests
that need it skip, saying so.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    """The headless browser's path, or a skip that says how to get one."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on PATH: `make install` installs it where apt-get is available")


def screenshot(page: Path, folder: Path, *, width: int, height: int) -> np.ndarray:
    """The page rendered at ``width`` x ``height`` CSS pixels, as an (H, W, 3) uint8 array."""
    shot = folder / f"{page.stem}.png"
    command = [
        browser(),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
        f"--screenshot={shot}",
        page.resolve().as_uri(),
    ]
    # A fresh profile per shot: Chromium refuses a profile another test's browser holds.
    command.insert(1, f"--user-data-dir={folder / 'chromium-profile'}")
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return decode_png(shot.read_bytes())[:, :, :3]


def decode_png(data: bytes) -> np.ndarray:
    """An 8-bit, non-interlaced RGB or RGBA PNG as an (H, W, channels) uint8 array."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour})")
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
    stride = width * channels
    rows = raw.reshape(height, stride + 1)
    image = np.zeros((height, stride), dtype=np.int32)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) & 0xFF
        else:  # Sub, Average and Paeth depend on the pixel to the left: one pass along the row
            current = _unfilter_sequential(int(kind), line, previous, channels)
        image[y] = current
        previous = current
    return image.reshape(height, width, channels).astype(np.uint8)


def _unfilter_sequential(
    kind: int, line: np.ndarray, previous: np.ndarray, channels: int
) -> np.ndarray:
    out = [0] * len(line)
    above = previous.tolist()
    values = line.tolist()
    for i, value in enumerate(values):
        left = out[i - channels] if i >= channels else 0
        up = above[i]
        if kind == 1:
            out[i] = (value + left) & 0xFF
        elif kind == 3:
            out[i] = (value + (left + up) // 2) & 0xFF
        else:
            corner = above[i - channels] if i >= channels else 0
            estimate = left + up - corner
            pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
            best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            out[i] = (value + best) & 0xFF
    return np.asarray(out, dtype=np.int32)


def mask_of(image: np.ndarray, colour: str, tolerance: int = 6) -> np.ndarray:
    """Where ``image`` shows the CSS colour ``#rrggbb`` (within ``tolerance`` per channel)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int32)
    return np.all(np.abs(image.astype(np.int32) - rgb) <= tolerance, axis=-1)


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
