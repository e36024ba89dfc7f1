"""Decoding one image for a loader: opened lazily, its size read from the header, then
decoded in full or at a reduced JPEG scale and cropped and resized to the output in the
worker; or its bytes kept whole for a batched decode on the training device.

An image comes from a `Source`: a file's path, or the file's bytes (a sample of a tar
shard, a Hugging Face dataset), with `name` the text that names it in errors. Every problem
is one `DataError` naming it: a file that is gone or unreadable, empty, not an image,
damaged or truncated, a decompression bomb, or of a mode that has no 8-bit "L"/"RGB" form.

- `read_header(source)`: a `Header` (width, height, PIL mode, format) from the file's
  header alone: nothing is decoded. The tensor pipeline draws a sample's crop box from it.
- `load_image(source, mode)`: the whole image, decoded and converted to `mode` ("L" or
  "RGB", see `images.convert_image`).
- `crop_resize(source, box, size, interp, mode, decode=...)`: the crop `box` of the image,
  resized to `size` (h, w) with `interp`, uint8 C×h×w: timm's RandomResizedCrop on a PIL
  image (torchvision's `resized_crop`: `crop`, then `resize`). With `decode="full"` the
  pixels are those of `tensor_resample.resized_crop` on the whole image (Pillow's `resize`
  of the crop, which that function reproduces). With `"reduced"`, a JPEG is decoded at the
  smallest scale (1/2, 1/4, 1/8, libjpeg's DCT scaling through Pillow's `Image.draft`)
  that still holds the crop at the output size (`reduced_scale`), and the crop, mapped into
  the reduced image, is resized from it (`resize(box=...)` with the float box: the same
  geometry); other formats, and crops too small to reduce, decode in full.
- `resize(img, box, size, interp)`: the same crop and resize of an image decoded already.
- `read_bytes(source)` and `device_decodable(header, data)`: what `data.decode: device`
  ships to the main process instead (the encoded file, `as_tensor`), for the whole
  baseline JPEGs the device decoder reads as Pillow does (progressive ones decode in the
  worker); `decode_on_device(encoded, device, channels,
  names)` decodes a batch of them there (`torchvision.io.decode_jpeg`: nvjpeg on CUDA,
  libjpeg-turbo on the CPU), naming a file it cannot decode; `device_decoder(device)`
  says which decoder that is (what a cache built with it records).

Mode conversion (`convert_image`) happens on the decoded image, before the crop, as the
`pil` pipeline converts before its transform.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from distill.errors import first_line

from .errors import DataError
from .images import convert_image

__all__ = ["Header", "Source", "as_tensor", "crop_resize", "decode_on_device",
           "device_decodable", "device_decoder", "load_image", "read_bytes", "read_header",
           "reduced_scale", "resize", "source_name"]

Source = str | os.PathLike | bytes | bytearray | memoryview  # a file's path, or its bytes

# tensor_ops' interpolation codes (NEAREST, BILINEAR, BICUBIC) as Pillow's filters
_PIL_FILTERS = (Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)
_SCALES = (8, 4, 2)  # libjpeg's DCT scales that Pillow's draft asks for, largest first
# PIL modes of the JPEGs `decode_on_device` reads as Pillow does (not CMYK/YCCK)
_DEVICE_MODES = ("RGB", "L")


@dataclass(frozen=True)
class Header:
    """What an image file's header says: its size, PIL mode and format (e.g. "JPEG"), and
    whether it is a progressive JPEG."""

    name: str
    width: int
    height: int
    mode: str
    format: str | None
    progressive: bool = False

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width), as the tensor pipeline's draws take sizes."""
        return self.height, self.width

    @property
    def is_jpeg(self) -> bool:
        return self.format == "JPEG"


def source_name(source: Source, name: str | None = None) -> str:
    """The text that names `source` in errors: `name`, else the path (bytes: "image")."""
    if name is not None:
        return name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "image"
    return os.fspath(source)


def read_bytes(source: Source, name: str | None = None) -> bytes:
    """The encoded file (as it is, for a decoder elsewhere); a path is read whole."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    where = source_name(source, name)
    with _named(where, source), open(source, "rb") as fh:
        return fh.read()


def read_header(source: Source, name: str | None = None) -> Header:
    """The image's size, mode and format from its header (nothing decoded)."""
    where = source_name(source, name)
    with _named(where, source), _opened(source) as img:
        return Header(where, img.width, img.height, img.mode, img.format,
                      bool(img.info.get("progressive") or img.info.get("progression")))


def load_image(source: Source, mode: str, name: str | None = None) -> Image.Image:
    """The whole image, decoded and converted to `mode` ("L" or "RGB"); any problem is one
    `DataError` naming it."""
    where = source_name(source, name)
    with _named(where, source), _opened(source) as img:
        img.load()  # decode it all here: a truncated file fails now, named
        return convert_image(img, mode, where)


def reduced_scale(box: Sequence[int], size: Sequence[int]) -> int:
    """The JPEG scale (8, 4, 2, else 1) `data.decode: reduced` decodes at for a crop
    `box` (top, left, h, w) resized to `size` (h, w): the largest s with h / s ≥ size h and
    w / s ≥ size w, so the reduced crop still holds the output's resolution."""
    _, _, h, w = (int(v) for v in box)
    for s in _SCALES:
        if h >= size[0] * s and w >= size[1] * s:
            return s
    return 1


def crop_resize(source: Source, box: Sequence[int], size: Sequence[int], interp: int,
                mode: str, *, decode: str = "full", name: str | None = None,
                header: Header | None = None) -> torch.Tensor:
    """The crop `box` (top, left, h, w) of the image, resized to `size` (h, w) with `interp`
    (tensor_ops' code), in `mode` ("L"/"RGB"): uint8 C×h×w.

    `decode`: "full" (decoded whole: the pixels of `tensor_resample.resized_crop` on the
    whole image) or "reduced" (a JPEG decoded at `reduced_scale`; see the module).
    `header`: the file's, where read already (checked against the decoded image: a file
    that changed since is named)."""
    if decode not in ("full", "reduced"):
        raise ValueError(f"crop_resize: decode must be 'full' or 'reduced', not {decode!r}")
    where = source_name(source, name)
    top, left, h, w = (int(v) for v in box)
    out_h, out_w = int(size[0]), int(size[1])
    resample = _PIL_FILTERS[int(interp)]
    with _named(where, source), _opened(source) as img:
        full = (img.width, img.height)
        if header is not None and (header.width, header.height) != full:
            raise DataError(f"{where}: the file changed while it was read (its size was "
                            f"{header.width}×{header.height}, now {full[0]}×{full[1]})")
        scale = reduced_scale(box, size) if decode == "reduced" and img.format == "JPEG" else 1
        if scale > 1:
            drafted = img.draft(None, (full[0] // scale, full[1] // scale))
            scale = round(full[0] / drafted[1][2]) if drafted is not None else 1
        img.load()
        img = convert_image(img, mode, where)
        if scale == 1:
            return resize(img, box, size, interp)
        # the crop mapped into the reduced image
        out = img.resize((out_w, out_h), resample, box=(left / scale, top / scale,
                                                       (left + w) / scale, (top + h) / scale))
    return _chw(out)


def resize(img: Image.Image, box: Sequence[int], size: Sequence[int], interp: int
           ) -> torch.Tensor:
    """The crop `box` (top, left, h, w) of a decoded image resized to `size` (h, w) with
    `interp` (tensor_ops' code): torchvision's `resized_crop` on a PIL image (`crop`, then
    `resize` of the crop; the pixels of `tensor_resample.resized_crop`), uint8 C×h×w."""
    top, left, h, w = (int(v) for v in box)
    out = img.crop((left, top, left + w, top + h)).resize(
        (int(size[1]), int(size[0])), _PIL_FILTERS[int(interp)])
    return _chw(out)


def device_decodable(header: Header, data: bytes) -> bool:
    """Whether `decode_on_device` reads this file (`data`, its `header`) as Pillow would,
    and fast: a whole JPEG (ending with its end-of-image marker: a truncated file decodes
    in the worker, which names it) of PIL mode "RGB" or "L" (nvjpeg does not convert
    CMYK/YCCK JPEGs as Pillow does: those decode in the loader worker too), baseline, not
    progressive (nvjpeg decodes a progressive JPEG on its hybrid path, its Huffman decoding
    on the main process's CPU, one image at a time: the loader worker decodes it instead)."""
    return (header.is_jpeg and header.mode in _DEVICE_MODES and not header.progressive
            and data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"))


def decode_on_device(encoded: Sequence[torch.Tensor], device: torch.device | str,
                     channels: int, names: Sequence[str] | None = None) -> list[torch.Tensor]:
    """JPEG files (1-D uint8 CPU tensors, `device_decodable`) decoded on `device` in one
    batched call: uint8 C×H×W each, C = `channels` (1: PIL's "L" of the RGB image; 3:
    grayscale files repeated, as PIL's "RGB" of an "L" image). On CUDA, nvjpeg; on the CPU,
    torchvision's libjpeg-turbo (the same pixels as Pillow's for RGB and grayscale JPEGs).

    A file the decoder refuses is a `DataError` naming it (`names`: each file's, else its
    place in the batch), found by decoding the batch's files one by one."""
    if not encoded:
        return []
    device = torch.device(device)
    try:
        images = _decode_jpegs(list(encoded), device)
    except RuntimeError as exc:
        for i, data in enumerate(encoded):
            try:
                _decode_jpegs([data], device)
            except RuntimeError as one:
                where = names[i] if names is not None else f"JPEG {i} of the batch"
                raise DataError(f"{where}: the {device.type} JPEG decoder cannot decode it "
                                f"({_reason(one)}): replace or remove it, or set data.decode: "
                                "full") from None
        raise DataError(f"data.decode: device: the {device.type} JPEG decoder failed on a "
                        f"batch ({_reason(exc)}); set data.decode: full") from None
    from .tensor_ops import to_gray

    out = []
    for im in images:
        if im.shape[0] == channels:
            out.append(im)
        elif channels == 1:
            out.append(to_gray(im[None])[0])
        else:
            out.append(im[:1].expand(channels, -1, -1))
    return out


def device_decoder(device: torch.device | str) -> dict[str, str | None]:
    """Which decoder `decode_on_device` runs on `device`: what a cache built with
    `data.decode: device` records, since each decodes JPEGs to its own pixels (nvjpeg's
    hardware and hybrid backends, per GPU model, and libjpeg-turbo on the CPU all differ a
    little). The device type and torchvision's version (it bundles its decoders), and on
    CUDA the GPU's name, the CUDA version and the nvjpeg library torchvision loads."""
    import torchvision

    device = torch.device(device)
    facts: dict[str, str | None] = {"device": device.type, "torchvision": torchvision.__version__}
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
        facts["cuda"] = torch.version.cuda
        facts["nvjpeg"] = _nvjpeg(torchvision)
    return facts


def _nvjpeg(torchvision: Any) -> str | None:
    """The nvjpeg library torchvision loads: the one its wheel bundles (its file name), or
    an `nvidia-nvjpeg*` package's version; None if neither is found."""
    from importlib import metadata
    from pathlib import Path

    libs = Path(torchvision.__file__).resolve().parent.parent / "torchvision.libs"
    bundled = sorted(p.name for p in libs.glob("libnvjpeg*")) if libs.is_dir() else []
    if bundled:
        return bundled[0]
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("nvidia-nvjpeg"):
            return f"{name} {dist.version}"
    return None


def _decode_jpegs(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        return decode_jpeg(encoded, mode=ImageReadMode.UNCHANGED, device=device)


def _reason(exc: BaseException) -> str:
    """A torchvision error's message without its source location prefix."""
    text = first_line(exc)
    return text.rsplit(", ", 1)[-1] if text.startswith("decode_jpeg") else text


def as_tensor(data: bytes) -> torch.Tensor:
    """Encoded bytes as a 1-D uint8 tensor (no copy; read only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # not writable: it is only read
        return torch.frombuffer(data, dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def _chw(img: Image.Image) -> torch.Tensor:
    """A PIL "L"/"RGB" image as uint8 C×H×W (a view of one copy of its pixels)."""
    a = np.asarray(img)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a read-only array: it is only read
        t = torch.from_numpy(a)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[Image.Image]:
    """`source` opened by Pillow (lazily: the header read, nothing decoded), closed after."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        with Image.open(io.BytesIO(source)) as img:
            yield img
    else:
        with open(source, "rb") as fh, Image.open(fh) as img:
            yield img


@contextlib.contextmanager
def _named(where: str, source: Source) -> Iterator[None]:
    """Every problem of reading or decoding `source` as one `DataError` naming `where`."""
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{where}: the file is gone (it was there when the dataset was "
                        "listed)") from None
    except PermissionError:
        raise DataError(f"{where}: cannot read the file (permission denied)") from None
    except Image.UnidentifiedImageError:
        what = ("an empty file (0 bytes)" if _size(source) == 0 else
                "not an image (PIL cannot identify its format)")
        raise DataError(f"{where}: {what}; replace or remove it") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{where}: {first_line(exc)}") from None
    except OSError as exc:
        if exc.errno is not None:  # the system could not read it
            raise DataError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
        raise DataError(f"{where}: cannot decode the image ({first_line(exc)}): the file is "
                        "damaged or truncated; replace or remove it") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        raise DataError(f"{where}: cannot decode the image ({first_line(exc)}): the file is "
                        "damaged; replace or remove it") from None


def _size(source: Source) -> int | None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    try:
        return os.path.getsize(source)
    except OSError:
        return None
