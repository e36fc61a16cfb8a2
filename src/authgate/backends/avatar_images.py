"""Avatar images: accept JPEG, PNG or GIF by their content, re-encode them small and clean.

Only the JPEG, PNG and GIF decoders of Pillow ever see an upload (``Image.open(formats=...)``): a
file is judged by its bytes, never by its name or the Content-Type the client claimed, and the
decoders of every other format (PSD, FITS, TIFF, WebP, ...) stay out of reach. The size an image
declares is checked against ``max_pixels`` before a pixel is decoded. Whatever is accepted is
decoded and written again from its pixels alone: EXIF (GPS positions, camera serials), ICC
profiles, comments, text chunks and anything appended after the image (polyglots) are gone.

Output: a JPEG upload becomes a JPEG (quality 85, no metadata), a PNG or GIF upload a PNG (RGBA
when it has transparency), at most ``max_side`` pixels on each side; the first frame of an
animation.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from authgate.errors import InvalidImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF")
DEFAULT_MAX_SIDE = 512
JPEG_QUALITY = 85

# What a corrupt, truncated or hostile file makes Pillow's decoders raise.
_DECODING_ERRORS = (
    OSError,  # UnidentifiedImageError, "image file is truncated", decoder errors
    SyntaxError,  # Pillow's "not a ... file" during header parsing
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
    # Pillow warns between MAX_IMAGE_PIXELS and twice that; where warnings are errors (tests,
    # ``-W error``) the warning is raised. Our own ``max_pixels`` refuses those images anyway.
    Image.DecompressionBombWarning,
)


@dataclass(frozen=True, slots=True)
class ProcessedAvatar:
    """The re-encoded image, ready to store and serve."""

    data: bytes
    extension: str  # "jpg" or "png"
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return "image/jpeg" if self.extension == "jpg" else "image/png"


def process_avatar(
    data: bytes | IO[bytes], *, max_pixels: int, max_side: int = DEFAULT_MAX_SIDE
) -> ProcessedAvatar:
    """Check and re-encode an uploaded image; ``InvalidImageError`` (422) when it is not a
    readable JPEG, PNG or GIF of at most ``max_pixels`` pixels."""
    stream: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with Image.open(stream, formats=ACCEPTED_FORMATS) as image:
            return _reencode(image, max_pixels=max_pixels, max_side=max_side)
    except UnidentifiedImageError:
        raise InvalidImageError("Only JPEG, PNG or GIF images are accepted.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(max_pixels) from None
    except _DECODING_ERRORS:
        raise InvalidImageError("The image is damaged or truncated.") from None


def _too_many_pixels(max_pixels: int) -> InvalidImageError:
    return InvalidImageError(f"The image has too many pixels (at most {max_pixels:,}).")


def _reencode(image: Image.Image, *, max_pixels: int, max_side: int) -> ProcessedAvatar:
    source_format = image.format
    if source_format not in ACCEPTED_FORMATS:  # ``formats=`` already ensures it
        raise InvalidImageError("Only JPEG, PNG or GIF images are accepted.")
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise _too_many_pixels(max_pixels)
    if source_format == "JPEG":
        # Let the JPEG decoder scale down by up to 8 while decoding: far less memory and time.
        image.draft("RGB", (max_side, max_side))
    small = _to_rgb_or_rgba(image)
    # In place: for an image already in RGB(A), the only full-size copy is the decoded one.
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # The orientation is read from the EXIF copied along with the pixels; the result is written
    # without it, so a viewer could not apply it twice.
    small = ImageOps.exif_transpose(small)
    # A fresh image: nothing of the upload's metadata (``info``) can reach the encoder.
    clean = Image.new(small.mode, small.size)
    clean.paste(small)
    out = io.BytesIO()
    if source_format == "JPEG":
        clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        extension = "jpg"
    else:
        clean.save(out, "PNG", optimize=True)
        extension = "png"
    return ProcessedAvatar(out.getvalue(), extension, clean.width, clean.height)


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """The first frame in RGB, or in RGBA when it has transparency (not yet decoded when it
    is already in that mode, so that ``thumbnail`` can decode it straight to a smaller size)."""
    if image.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits rather than clip
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    target = "RGBA" if has_alpha else "RGB"
    return image if image.mode == target else image.convert(target)
