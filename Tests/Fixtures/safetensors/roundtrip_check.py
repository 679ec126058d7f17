#!/usr/bin/env python3
"""Live half of SafeTensorsTests.liveRoundTripThroughPython.

Usage: roundtrip_check.py SWIFT_WRITTEN OUT
Loads a file written by MisalignCore's SafeTensorsWriter with the reference reader (numpy
backend, so torch is not needed), checks its header layout and values, then writes OUT with
the reference writer: the tensors numpy can hold (all but BF16), an extra tensor "doubled" = 2 * w.f32, and metadata
writer=python. Prints "ok" on success; exits non-zero with the reason otherwise.
"""
import json
import struct
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file


def main(src, dst):
    with open(src, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0, f"header length {n} is not padded to 8"
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"] == {"format": "pt", "writer": "misalign"}, header["__metadata__"]
    tensors = {}
    with safe_open(src, framework="numpy") as f:
        assert f.metadata() == {"format": "pt", "writer": "misalign"}
        assert set(f.keys()) == {"w.f32", "w.bf16", "w.f16", "ids"}, f.keys()
        for k in f.keys():
            if k != "w.bf16":  # numpy has no bfloat16; checked from the raw bytes below
                tensors[k] = f.get_tensor(k)
    assert tensors["w.f32"].dtype == np.float32 and tensors["w.f32"].shape == (4, 6)
    assert tensors["w.f16"].dtype == np.float16 and tensors["w.f16"].shape == (24,)
    assert tensors["ids"].dtype == np.int64 and tensors["ids"].tolist() == [3, 1, 4, 1, 5]
    # numpy has no bfloat16: read those bits by hand and widen them exactly.
    bf = header["w.bf16"]
    assert bf["dtype"] == "BF16" and bf["shape"] == [2, 12]
    b, e = bf["data_offsets"]
    bits = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<u2").astype(np.uint32) << 16
    widened = bits.view(np.float32)
    f32 = tensors["w.f32"].reshape(-1)
    # bf16 must be f32 rounded to nearest even, computed here independently.
    u = f32.view(np.uint32).astype(np.uint64)
    rne = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    assert np.array_equal(widened, rne), "bf16 rounding differs"
    assert np.array_equal(tensors["w.f16"], f32.astype(np.float16)), "f16 rounding differs"
    # numpy has no bfloat16 type, so the file Python writes back holds the other tensors.
    out = {k: v for k, v in tensors.items()}
    out["doubled"] = tensors["w.f32"] * 2
    save_file(out, dst, metadata={"format": "pt", "writer": "python"})
    print("ok")


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except AssertionError as e:
        print(f"check failed: {e}")
        sys.exit(1)
