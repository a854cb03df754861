"""Every odd image kind becomes 8-bit RGB, and every bad one is rejected with its reason."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from components.data.images import InputRejected, decode_caption, decode_image
from components.data.records import Reason
from tests.conftest import LIMITS, image_bytes, noise_image


def rgb_pixels(data: bytes) -> np.ndarray:
    decoded = decode_image(data, LIMITS)
    assert decoded.rgb.mode == "RGB"
    return np.asarray(decoded.rgb)


def rejection(data: bytes, limits=LIMITS) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_image(data, limits)
    return caught.value


def test_grayscale_becomes_three_equal_channels():
    gray = Image.fromarray(np.arange(32 * 32, dtype=np.uint8).reshape(32, 32) % 251, "L")
    pixels = rgb_pixels(image_bytes(gray))
    assert np.array_equal(pixels[..., 0], np.asarray(gray))
    assert np.array_equal(pixels[..., 0], pixels[..., 2])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_pixels_are_composited_on_white(mode):
    image = Image.new(mode, (32, 32), (0, 0, 0, 255) if mode == "RGBA" else (0, 255))
    image.paste((0, 0, 0, 0) if mode == "RGBA" else (0, 0), (0, 0, 16, 32))  # left half clear
    pixels = rgb_pixels(image_bytes(image))
    assert (pixels[:, :16] == 255).all()  # transparent -> white, not black
    assert (pixels[:, 16:] == 0).all()


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (32, 32), 1)
    image.putpalette([0, 0, 0, 200, 30, 40] + [0] * 762)
    image.paste(0, (0, 0, 16, 32))
    pixels = rgb_pixels(image_bytes(image, transparency=0))
    assert (pixels[:, :16] == 255).all()
    assert (pixels[:, 16:] == (200, 30, 40)).all()


def test_cmyk_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in ink terms
    assert (rgb_pixels(image_bytes(cmyk, "TIFF")) == (255, 0, 0)).all()


def test_16_bit_is_rescaled_not_clipped():
    levels = np.array([[0, 257 * 128, 65535]], dtype=np.uint16).repeat(32, 0).repeat(16, 1)
    image = Image.fromarray(levels)
    assert image.mode.startswith("I;16")
    pixels = rgb_pixels(image_bytes(image))
    assert pixels[0, 0, 0] == 0 and pixels[0, 16, 0] == 128 and pixels[0, 40, 0] == 255


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (64, 32), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 8, 8))  # red marker top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    decoded = decode_image(image_bytes(image, exif=exif), LIMITS)
    assert decoded.rgb.size == (32, 64)
    assert tuple(np.asarray(decoded.rgb)[0, -1]) == (255, 0, 0)  # marker now top-right
    assert not decoded.keep_source_bytes


def test_plain_rgb_jpeg_keeps_its_bytes_and_others_do_not():
    assert decode_image(image_bytes(noise_image(0), "JPEG"), LIMITS).keep_source_bytes
    assert not decode_image(image_bytes(noise_image(0), "PNG"), LIMITS).keep_source_bytes
    gray_jpeg = image_bytes(noise_image(0).convert("L"), "JPEG")
    assert not decode_image(gray_jpeg, LIMITS).keep_source_bytes


def test_zero_byte_file_is_rejected():
    assert rejection(b"").reason == Reason.EMPTY_FILE


def test_non_image_with_image_extension_is_rejected():
    assert rejection(b"<html>not really a jpeg</html>").reason == Reason.NOT_AN_IMAGE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_rejected(fmt):
    data = image_bytes(noise_image(1, (96, 96)), fmt)
    assert rejection(data[: len(data) // 2]).reason == Reason.TRUNCATED


def test_image_under_min_side_is_rejected():
    found = rejection(image_bytes(noise_image(2, (200, 15))))
    assert found.reason == Reason.TOO_SMALL and "200x15" in found.detail


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries almost no pixel data: a bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [3_000, 60_000])
def test_decompression_bomb_is_rejected_before_decoding(side):
    found = rejection(_png_header_only(side, side))
    # decoding would have failed as truncated: too_large proves the pixels were never read
    assert found.reason == Reason.TOO_LARGE


def test_captions_are_checked():
    assert decode_caption(b"  a red\n car \xe2\x80\x94 parked ") == "a red car \u2014 parked"
    for raw, reason in [
        (None, Reason.MISSING_CAPTION),
        (" \t\n", Reason.EMPTY_CAPTION),
        (b"caf\xe9", Reason.CAPTION_NOT_UTF8),
        ("caf\udce9", Reason.CAPTION_NOT_UTF8),
    ]:
        with pytest.raises(InputRejected) as caught:
            decode_caption(raw)
        assert caught.value.reason == reason
