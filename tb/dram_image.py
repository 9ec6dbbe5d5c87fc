"""The file formats of the DRAM model (``rtl/verilog/dypipe_dram.v``), in one place.

A beat is ``width_bits`` wide and holds ``width_bits // 16`` int16 elements, element 0 in the
least significant bits. The image the model loads (``rtl/verilog/dypipe_dram.cpp``) is the
beats one after another, ``width_bits // 8`` bytes each, least significant byte first; a dump
is one beat per line in hex, as ``$writememh`` prints it.
"""

import numpy as np

__all__ = ["write_image", "read_dump"]


def write_image(path, beats, width_bits):
    """Write a (n_beats, width_bits // 16) array of 16-bit elements as the model's image."""
    beats = np.asarray(beats)
    if beats.ndim != 2 or beats.shape[1] != width_bits // 16:
        raise ValueError(f"an image is (beats, {width_bits // 16}) elements, not {beats.shape}")
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(beats.astype("<u2", copy=False)).tobytes())


def read_dump(path, width_bits):
    """Parse a ``$writememh`` dump into a (n_beats, width_bits // 16) uint16 array."""
    digits = width_bits // 4
    words = []
    with open(path) as f:
        for line in f:
            line = line.split("//")[0].strip()
            if not line or line.startswith("@"):
                continue
            for token in line.split():
                words.append(token.replace("_", "").rjust(digits, "0"))
    raw = bytes.fromhex("".join(words))
    big = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width_bits // 8)
    return np.ascontiguousarray(big[:, ::-1]).view("<u2").reshape(-1, width_bits // 16)
