"""What sellers may upload: file-name and content checks for product files, cover images.

Plain Python, no Reflex. Product files are streamed (never read whole); a cover image is
small by rule (:data:`MAX_COVER_BYTES`) and is decoded once to make its thumbnails.
"""

from __future__ import annotations

import io
import unicodedata
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from quantoxbay.services import DomainError

#: Extensions of things a buyer's computer would run on a double-click. Sellers of
#: software ship them inside an archive (.zip), where the buyer decides what runs.
BLOCKED_EXTENSIONS = frozenset(
    {
        "exe", "dll", "com", "scr", "pif", "cpl", "msi", "msp", "msc", "bat", "cmd", "vbs", "vbe",
        "js", "jse", "wsf", "wsh", "hta", "ps1", "psm1", "reg", "lnk", "jar", "sh", "bash", "csh",
        "ksh", "zsh", "command", "run", "bin", "elf", "app", "scpt", "deb", "rpm",
    }
)  # fmt: skip

#: Magic numbers of native executables, whatever the file is called.
_EXECUTABLE_MAGIC = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xfe\xed\xfa\xce", "a macOS program"),
    (b"\xfe\xed\xfa\xcf", "a macOS program"),
    (b"\xce\xfa\xed\xfe", "a macOS program"),
    (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a macOS or Java program"),
)

MAX_COVER_BYTES = 10 * 1024 * 1024
MAX_COVER_PIXELS = 40_000_000  # about 7700 x 5200; a bigger "image" is a decompression bomb
COVER_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
#: Thumbnail variants: name -> (width, height, crop). Cards crop to 4:3, the page keeps the shape.
COVER_VARIANTS = {"card": (480, 360, True), "page": (1200, 1200, False)}


def check_upload_name(filename: str) -> str:
    """A seller's file name, checked: no folders or path tricks, no runnable file types.

    Returns:
        The name to store and show (NFKC-normalised, at most 200 characters).

    Raises:
        DomainError: With a message naming the problem; nothing has been stored.
    """
    # Imported here: catalog imports this module.
    from quantoxbay.services.catalog.files import safe_filename

    raw = filename or ""
    name = unicodedata.normalize("NFKC", raw)
    if not name.strip():
        raise DomainError("The file has no name. Rename it and try again.")
    if "/" in name or "\\" in name or name.strip().startswith(".") or ".." in name:
        raise DomainError(f"{raw!r} is not a plain file name (no folders, '..' or leading dots). Rename it.")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise DomainError(f"{raw!r} contains control characters. Rename the file and try again.")
    clean = safe_filename(name)
    extension = clean.rsplit(".", 1)[-1].lower() if "." in clean else ""
    if extension in BLOCKED_EXTENSIONS:
        raise DomainError(
            f"{clean}: .{extension} files can run programs on a buyer's computer and are not accepted. "
            "Put software in a .zip archive."
        )
    return clean


class SniffedStream:
    """A read-only stream that refuses native executables by their first bytes.

    Only the first few bytes are looked at before anything is stored; the rest passes
    through untouched, chunk by chunk.
    """

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        head = b""
        while len(head) < 8:
            chunk = stream.read(8 - len(head))
            if not chunk:
                break
            head += chunk
        for magic, what in _EXECUTABLE_MAGIC:
            if head.startswith(magic):
                raise DomainError(f"{name} looks like {what}; programs are not accepted. Put it in a .zip.")
        self._head = head

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            if len(data) < size:
                data += self._stream.read(size - len(data))
            return data
        return self._stream.read(size)


@dataclass(frozen=True)
class CoverImages:
    """Encoded thumbnails of a cover image, ready to store."""

    variants: dict[str, bytes]
    content_type: str = "image/webp"
    extension: str = "webp"


def make_cover_images(stream: BinaryIO) -> CoverImages:
    """Decode an uploaded cover (JPEG, PNG, WebP or GIF) and make its thumbnails.

    Raises:
        DomainError: If it is too large, not an image, or an image with absurd dimensions.
    """
    data = stream.read(MAX_COVER_BYTES + 1)
    if not data:
        raise DomainError("The cover image is empty.")
    if len(data) > MAX_COVER_BYTES:
        raise DomainError(f"Cover images are at most {MAX_COVER_BYTES // (1024 * 1024)} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in COVER_FORMATS:
                    raise DomainError("Covers must be JPEG, PNG, WebP or GIF images.")
                if probe.width * probe.height > MAX_COVER_PIXELS:
                    raise DomainError("That image is too large in pixels; use one under 40 megapixels.")
                probe.verify()
            with Image.open(io.BytesIO(data)) as opened:
                opened.seek(0)
                image = ImageOps.exif_transpose(opened)
                image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
                variants: dict[str, bytes] = {}
                for name, (width, height, crop) in COVER_VARIANTS.items():
                    if crop:
                        thumb = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
                    else:
                        thumb = image.copy()
                        thumb.thumbnail((width, height), Image.Resampling.LANCZOS)
                    out = io.BytesIO()
                    thumb.save(out, "WEBP", quality=80, method=4)
                    variants[name] = out.getvalue()
    except DomainError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DomainError("That file is not an image we can read (JPEG, PNG, WebP or GIF).") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt image data
        raise DomainError("That image is damaged or incomplete. Export it again and retry.") from exc
    return CoverImages(variants=variants)
