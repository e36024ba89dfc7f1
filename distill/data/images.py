"""An image's mode converted to the recipe's ("L" or "RGB").

`convert_image` turns any PIL mode into "L" or "RGB" the way PIL's `convert` and
torchvision's ImageFolder do, except where they would lose or invent data (16-bit and
float grayscale are scaled, not clipped). Opening and decoding a file is `decode`'s.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import DataError

__all__ = ["convert_image"]

_GRAY16 = ("I;16", "I;16L", "I;16B", "I;16N")


def convert_image(img: Image.Image, mode: str, where: object = "image") -> Image.Image:
    """`img` in PIL mode `mode` ("L" or "RGB"), every source mode converted or refused.

    - 16-bit grayscale ("I;16", "I;16B", …) and 32-bit integer ("I", how PIL opens 16-bit
      PNG and TIFF files) are scaled from 0..65535 to 0..255 (v·255/65535, rounded), not
      clipped at 255 as PIL's `convert` does; "I" values outside 0..65535 are refused.
      32-bit float ("F") is scaled from 0..1; values outside 0..1 are refused.
    - Palette ("P", "PA") and premultiplied ("RGBa") images go through "RGBA" first, so a
      palette's transparency is resolved.
    - Alpha ("RGBA", "LA", "PA", transparent palettes) is dropped: the stored colours are
      kept, not composited onto a background. This is what PIL's `convert` and
      torchvision's ImageFolder do, so an image that loaded before gives the same pixels.
    - CMYK, YCbCr, HSV, LAB and bilevel ("1") images use PIL's conversion to RGB; "L" from a
      colour image is PIL's ITU-R 601-2 luma of its RGB.
    - Anything PIL cannot convert is a `DataError` naming `where` and the mode.
    """
    if img.mode == mode:
        return img
    source = img.mode
    if source in _GRAY16 or source in ("I", "F"):
        img = _to_8bit(img, where)
    elif source in ("P", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == mode:
        return img
    try:
        if mode == "L" and img.mode not in ("1", "L", "LA"):
            img = img.convert("RGB")
        return img.convert(mode)
    except (ValueError, OSError) as exc:
        raise DataError(f"{where}: cannot convert an image of PIL mode '{source}' to "
                        f"'{mode}' ({exc}); save it as 8-bit RGB or grayscale") from None


def _to_8bit(img: Image.Image, where: object) -> Image.Image:
    """A 16-bit, 32-bit integer or float grayscale image as 8-bit "L" (see `convert_image`)."""
    a = np.asarray(img)
    if img.mode == "F":
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise DataError(f"{where}: 32-bit float pixels outside 0..1 (found "
                            f"{np.nanmin(a):g}..{np.nanmax(a):g}); save it as 8- or 16-bit")
        return Image.fromarray(np.rint(a * 255.0).astype(np.uint8), "L")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise DataError(f"{where}: 32-bit integer pixels outside 0..65535 (found {a.min()}.."
                        f"{a.max()}); save it as 8- or 16-bit")
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")
