"""The components: plain classes following jcsr-bench's duck-typed protocols."""

import struct
import zlib

import torch

HEADER = struct.Struct(">4sHHB")  # magic, height, width, bits kept
MAGIC = b"PST1"


class PosterizeCodec:
    def __init__(self, qualities=(1, 2, 3, 4, 5, 6, 7, 8), level=9):
        self.qualities = list(qualities)
        self.level = level
        self.identity = f"posterize:v1:zlib{level}"

    def encode(self, image: torch.Tensor, quality: int) -> bytes:
        if quality not in self.qualities:
            raise ValueError(f"quality {quality!r} is not one of {self.qualities}")
        shift = 8 - int(quality)
        kept = (image >> shift).contiguous().numpy().tobytes()
        return HEADER.pack(MAGIC, image.shape[1], image.shape[2], quality) + zlib.compress(
            kept, self.level
        )

    def decode(self, data: bytes) -> torch.Tensor:
        if len(data) < HEADER.size or data[:4] != MAGIC:
            raise ValueError("not a posterize payload")
        _, height, width, bits = HEADER.unpack_from(data)
        raw = zlib.decompress(data[HEADER.size:])
        kept = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(3, height, width)
        shift = 8 - bits
        # reconstruct at the centre of each quantisation bin
        centre = (1 << shift) >> 1
        return ((kept.to(torch.int32) << shift) + centre).clamp(0, 255).to(torch.uint8)


class NearestSR:
    def __init__(self, scale=4):
        self.scale = scale
        self.identity = f"nearest:x{scale}"

    def upscale(self, image: torch.Tensor) -> torch.Tensor:
        return image.repeat_interleave(self.scale, 1).repeat_interleave(self.scale, 2)
