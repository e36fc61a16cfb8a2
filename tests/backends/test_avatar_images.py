"""Avatar images: judged by their content, re-encoded small and without metadata, bombs refused."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from typing import Any

import pytest
from PIL import ExifTags, Image

from authgate.backends.avatar_images import process_avatar
from authgate.errors import InvalidImageError
from tests.helpers import png_declaring

MAX_PIXELS = 40_000_000


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Model] = "Serial 12345"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.0),
    }
    return exif


def refused(data: bytes, **kwargs: Any) -> InvalidImageError:
    with pytest.raises(InvalidImageError) as caught:
        process_avatar(data, max_pixels=kwargs.pop("max_pixels", MAX_PIXELS), **kwargs)
    assert caught.value.status == 422
    assert caught.value.code == "invalid_image"
    return caught.value


# Accepted formats ------------------------------------------------------------------------------


def test_a_jpeg_is_reencoded_without_exif_gps_icc_or_comment() -> None:
    source = encode(
        Image.new("RGB", (64, 48), "red"),
        "JPEG",
        exif=gps_exif(),
        icc_profile=b"fake icc profile data",
        comment=b"taken at home",
    )
    original = decode(source)
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fixture does carry GPS data
    assert b"SpyCam" in source

    result = process_avatar(source, max_pixels=MAX_PIXELS)

    assert (result.extension, result.content_type) == ("jpg", "image/jpeg")
    image = decode(result.data)
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert (image.width, image.height) == (result.width, result.height) == (64, 48)
    assert len(image.getexif()) == 0
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for key in ("exif", "icc_profile", "comment"):
        assert key not in image.info
    for marker in (b"SpyCam", b"Serial 12345", b"Exif\x00\x00", b"taken at home", b"fake icc"):
        assert marker not in result.data


def test_a_png_keeps_its_transparency_and_loses_its_text_chunks() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Ada at 12 Secret Lane")
    rgba = Image.new("RGBA", (40, 30), (0, 128, 255, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    source = encode(rgba, "PNG", pnginfo=info, exif=gps_exif(), icc_profile=b"fake icc data")
    assert b"Secret Lane" in source
    assert decode(source).info["icc_profile"] == b"fake icc data"

    result = process_avatar(source, max_pixels=MAX_PIXELS)

    assert (result.extension, result.content_type) == ("png", "image/png")
    image = decode(result.data)
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (255, 0, 0, 255)
    assert image.getpixel((5, 5))[3] == 0  # transparent stays transparent
    assert b"Secret Lane" not in result.data
    assert b"SpyCam" not in result.data
    assert "exif" not in image.info
    assert "icc_profile" not in image.info
    assert not getattr(image, "text", {})


def test_a_gif_becomes_a_png_of_its_first_frame() -> None:
    frames = [Image.new("RGB", (30, 20), color) for color in ("red", "blue", "green")]
    source = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(decode(source), "n_frames", 1) == 3

    result = process_avatar(source, max_pixels=MAX_PIXELS)

    image = decode(result.data)
    assert image.format == "PNG"
    assert getattr(image, "n_frames", 1) == 1
    assert b"acTL" not in result.data  # not an animated PNG either
    red, green, blue = image.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
    assert red > 200 and green < 50 and blue < 50


def test_a_gif_with_a_transparent_colour_becomes_an_rgba_png() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([255, 255, 255, 255, 0, 0] + [0] * 762)
    image.putpixel((5, 5), 1)
    result = process_avatar(encode(image, "GIF", transparency=0), max_pixels=MAX_PIXELS)
    out = decode(result.data)
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert out.getpixel((5, 5)) == (255, 0, 0, 255)


def test_dimensions_are_bounded_keeping_the_aspect_ratio_and_small_images_stay() -> None:
    for fmt in ("JPEG", "PNG", "GIF"):
        wide = process_avatar(
            encode(Image.new("RGB", (2000, 1000), "red"), fmt), max_pixels=MAX_PIXELS
        )
        assert (wide.width, wide.height) == (512, 256)
        assert decode(wide.data).size == (512, 256)
    tall = process_avatar(encode(Image.new("RGB", (300, 900)), "PNG"), max_pixels=MAX_PIXELS)
    assert (tall.width, tall.height) == (171, 512)
    small = process_avatar(encode(Image.new("RGB", (16, 9)), "PNG"), max_pixels=MAX_PIXELS)
    assert (small.width, small.height) == (16, 9)  # never enlarged
    custom = process_avatar(
        encode(Image.new("RGB", (400, 400)), "PNG"), max_pixels=MAX_PIXELS, max_side=128
    )
    assert (custom.width, custom.height) == (128, 128)


def test_the_exif_orientation_is_applied_then_dropped() -> None:
    # Left half red, right half blue; EXIF says "rotate 90° clockwise to display".
    image = Image.new("RGB", (200, 100), "blue")
    image.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    source = encode(image, "JPEG", exif=exif, quality=95)

    result = process_avatar(source, max_pixels=MAX_PIXELS)

    out = decode(result.data)
    assert out.size == (100, 200)  # portrait now
    assert out.getexif().get(ExifTags.Base.Orientation) is None  # not rotated twice by viewers
    top = out.getpixel((50, 20))
    bottom = out.getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60  # type: ignore[index]
    assert bottom[2] > 200 and bottom[0] < 60  # type: ignore[index]


def test_the_content_decides_not_the_name() -> None:
    png = encode(Image.new("RGB", (8, 8), "green"), "PNG")
    named_gif = io.BytesIO(png)
    named_gif.name = "avatar.gif"  # Pillow looks at a file object's name for hints
    assert process_avatar(named_gif, max_pixels=MAX_PIXELS).extension == "png"
    gif = encode(Image.new("RGB", (8, 8), "green"), "GIF")
    named_png = io.BytesIO(gif)
    named_png.name = "avatar.png"
    assert decode(process_avatar(named_png, max_pixels=MAX_PIXELS).data).format == "PNG"
    jpeg = io.BytesIO(encode(Image.new("RGB", (8, 8)), "JPEG"))
    jpeg.name = "avatar.svg"
    assert process_avatar(jpeg, max_pixels=MAX_PIXELS).extension == "jpg"


def test_other_colour_modes_are_converted() -> None:
    cmyk = process_avatar(
        encode(Image.new("CMYK", (20, 20), (0, 255, 255, 0)), "JPEG"), max_pixels=MAX_PIXELS
    )
    assert decode(cmyk.data).mode == "RGB"
    grey = process_avatar(encode(Image.new("L", (20, 20), 128), "PNG"), max_pixels=MAX_PIXELS)
    assert decode(grey.data).mode == "RGB"
    # 16-bit greyscale is scaled to 8 bits, not clipped to white.
    deep = process_avatar(encode(Image.new("I;16", (20, 20), 32768), "PNG"), max_pixels=MAX_PIXELS)
    value = decode(deep.data).getpixel((1, 1))
    assert 120 <= value[0] <= 136  # type: ignore[index]
    grey_alpha = process_avatar(
        encode(Image.new("LA", (20, 20), (10, 0)), "PNG"), max_pixels=MAX_PIXELS
    )
    assert decode(grey_alpha.data).mode == "RGBA"


# Refused ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda: encode(Image.new("RGB", (8, 8)), "WEBP"), id="webp"),
        pytest.param(lambda: encode(Image.new("RGB", (8, 8)), "BMP"), id="bmp"),
        pytest.param(lambda: encode(Image.new("RGB", (8, 8)), "TIFF"), id="tiff"),
        pytest.param(lambda: encode(Image.new("RGB", (8, 8)), "ICO"), id="ico"),
        pytest.param(
            lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            id="svg",
        ),
        pytest.param(lambda: b"<!doctype html><script>alert(document.cookie)</script>", id="html"),
        pytest.param(lambda: b"just some text, not an image\n" * 10, id="text"),
        pytest.param(lambda: b"", id="empty"),
        pytest.param(lambda: b"GIF89a<script>alert(1)</script>", id="gif-header-polyglot"),
    ],
)
def test_anything_but_jpeg_png_or_gif_is_refused(content: Any) -> None:
    error = refused(content())
    assert "JPEG, PNG or GIF" in error.message or "damaged" in error.message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_a_truncated_image_is_refused(fmt: str) -> None:
    noise = Image.effect_noise((200, 200), 80).convert("RGB")
    data = encode(noise, fmt)
    error = refused(data[: len(data) // 2])
    assert error.message == "The image is damaged or truncated."


def test_a_corrupt_image_is_refused() -> None:
    data = bytearray(encode(Image.effect_noise((64, 64), 80).convert("RGB"), "PNG"))
    data[60:80] = b"\x00" * 20  # breaks the IDAT checksum/stream
    refused(bytes(data))


def test_trailing_data_after_an_image_does_not_survive() -> None:
    polyglot = encode(Image.new("RGB", (8, 8), "red"), "PNG") + (
        b"<html><script>alert(document.cookie)</script></html>"
    )
    result = process_avatar(polyglot, max_pixels=MAX_PIXELS)
    assert b"<script" not in result.data
    assert b"<html" not in result.data


# Decompression bombs ---------------------------------------------------------------------------


def test_a_decompression_bomb_is_refused_as_422() -> None:
    bomb = png_declaring(30000, 30000)  # 900 megapixels in 100 bytes
    assert len(bomb) < 200
    error = refused(bomb)
    assert "too many pixels" in error.message


def test_a_bomb_between_pillows_warning_and_error_limits_is_refused_either_way() -> None:
    bomb = png_declaring(10000, 10000)  # 100 MP: Pillow only warns about it
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS < 10000 * 10000 < 2 * Image.MAX_IMAGE_PIXELS
    # With warnings as errors (this suite's setting) the warning is caught and answered 422 ...
    refused(bomb)
    # ... and where warnings only print, our own pixel limit refuses it all the same.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        error = refused(bomb)
    assert error.message == "The image has too many pixels (at most 40,000,000)."


def test_the_pixel_limit_is_checked_before_decoding() -> None:
    declared = png_declaring(8000, 6000)  # 48 MP declared; its pixel data is garbage
    error = refused(declared)  # refused for the size, before the garbage could be decoded
    assert error.message == "The image has too many pixels (at most 40,000,000)."
    small_limit = refused(encode(Image.new("RGB", (100, 100)), "PNG"), max_pixels=5000)
    assert "5,000" in small_limit.message


def test_the_global_pillow_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    refused(png_declaring(30000, 30000), max_pixels=1000)
    process_avatar(encode(Image.new("RGB", (8, 8)), "PNG"), max_pixels=1000)
    assert before == Image.MAX_IMAGE_PIXELS


def test_the_core_module_imports_no_framework() -> None:
    code = "import sys, authgate.backends.avatar_images; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "flask" not in loaded
    assert "sqlalchemy" not in loaded
