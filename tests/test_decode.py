"""`distill.data.decode`: an image opened lazily, decoded in full or reduced, cropped and
resized in the worker; the same pixels as the device's `resized_crop` on the whole image.

The sources are paths or bytes (+ a name for errors), as image folders and tar shards give
them; every problem is one `DataError` naming the source.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data.decode import (
    crop_resize,
    decode_on_device,
    device_decodable,
    load_image,
    read_bytes,
    read_header,
    reduced_scale,
)
from distill.data.errors import DataError
from distill.data.tensor_resample import resized_crop


def photo(h: int, w: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random picture (upsampled noise): structure at every scale, like a photo."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((w, h), Image.BICUBIC)
    return img if mode == "RGB" else img.convert(mode)


def encoded(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def whole(data: bytes, mode: str = "RGB") -> torch.Tensor:
    a = torch.from_numpy(np.array(load_image(data, mode)))
    return (a[None] if a.ndim == 2 else a.permute(2, 0, 1))[None]


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_worker_crop_resize_equals_the_device_resized_crop_bitwise(mode):
    """Pillow's crop + resize in the worker gives the pixels `resized_crop` gives on the
    whole decoded image, for every filter, upscaling and downscaling, edge crops included."""
    rng = np.random.default_rng(1)
    checked = 0
    for trial in range(12):
        h, w = (int(v) for v in rng.integers(9, 300, 2))
        data = encoded(photo(h, w, trial), quality=90)
        ref_image = whole(data, mode)
        for interp in (0, 1, 2):
            ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            box = (int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw)
            size = (int(rng.choice([16, 40])),) * 2
            got = crop_resize(data, box, size, interp, mode)
            ref = resized_crop(ref_image, torch.tensor([box]), size, torch.tensor([interp]))[0]
            assert got.dtype == torch.uint8 and got.shape == ref.shape
            assert torch.equal(got, ref), (h, w, box, size, interp)
            checked += 1
    assert checked == 36


def test_paths_and_bytes_give_the_same_pixels(tmp_path):
    data = encoded(photo(50, 70), quality=85)
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    assert read_bytes(path) == data
    assert read_header(path) == read_header(data, name=str(path))
    h = read_header(path)
    assert (h.width, h.height, h.mode, h.format, h.hw) == (70, 50, "RGB", "JPEG", (50, 70))
    box = (3, 4, 40, 50)
    assert torch.equal(crop_resize(path, box, (32, 32), 2, "RGB"),
                       crop_resize(data, box, (32, 32), 2, "RGB", name="shard.tar:x.jpg"))


def test_reduced_scale_is_the_largest_that_holds_the_output():
    assert reduced_scale((0, 0, 3000, 4000), (224, 224)) == 8
    assert reduced_scale((0, 0, 1791, 4000), (224, 224)) == 4  # 1791 / 8 < 224
    assert reduced_scale((0, 0, 448, 448), (224, 224)) == 2
    assert reduced_scale((0, 0, 447, 900), (224, 224)) == 1


def test_reduced_decoding_reads_less_and_keeps_the_geometry():
    """A JPEG crop that holds 2×, 4×, 8× the output decodes at that scale: the pixels are
    close to the full decode's (the same region, not a shifted one); a crop too small to
    reduce, and a PNG, give exactly the full decode's pixels."""
    img = photo(1200, 1600, 3)
    data = encoded(img, quality=92)
    for box, scale in [((0, 0, 1200, 1600), 8), ((100, 300, 500, 480), 4),
                       ((37, 51, 1000, 1400), 8), ((2, 3, 150, 200), 2), ((2, 3, 100, 200), 1)]:
        assert reduced_scale(box, (64, 64)) == scale
        full = crop_resize(data, box, (64, 64), 2, "RGB").float()
        red = crop_resize(data, box, (64, 64), 2, "RGB", decode="reduced").float()
        diff = (full - red).abs()
        if scale == 1:
            assert diff.max() == 0, box
        else:
            assert 0 < diff.mean() < 2.0 and diff.max() < 24, (box, diff.mean(), diff.max())
            # a box shifted by one output pixel is much further off: the geometry holds
            top, left, h, w = box
            step = 4 * max(1, w // 64)
            moved = left + step if left + step + w <= 1600 else left - step
            if moved < 0:  # the whole width: move the box's height instead
                top, h = (top + step, h - step)
                moved = left
            shifted = crop_resize(data, (top, moved, h, w), (64, 64), 2, "RGB").float()
            assert (full - shifted).abs().mean() > 2 * diff.mean()
    png = encoded(img.resize((400, 300)), "PNG")
    box = (0, 0, 300, 400)
    assert torch.equal(crop_resize(png, box, (64, 64), 1, "RGB", decode="reduced"),
                       crop_resize(png, box, (64, 64), 1, "RGB"))


@pytest.mark.parametrize("kind", ["L", "P", "I;16", "CMYK", "RGBA", "LA"])
def test_every_mode_pillow_reads_converts_as_before(kind):
    """Palette, grayscale, 16-bit, CMYK JPEG, alpha: converted by `convert_image` on the
    decoded image, before the crop, as the pil pipeline converts before its transform."""
    base = photo(40, 56, 5)
    if kind == "I;16":
        a = (np.asarray(base.convert("L")).astype(np.uint16) * 257)
        img, fmt = Image.fromarray(a), "PNG"
    elif kind == "CMYK":
        img, fmt = base.convert("CMYK"), "JPEG"
    else:
        img, fmt = base.convert(kind), "PNG"
    data = encoded(img, fmt)
    for mode in ("RGB", "L"):
        ref = whole(data, mode)
        box = (5, 7, 30, 40)
        got = crop_resize(data, box, (24, 24), 2, mode)
        assert torch.equal(got, resized_crop(ref, torch.tensor([box]), (24, 24),
                                             torch.tensor([2]))[0])
    assert device_decodable(read_header(data), data) is False  # only RGB and gray JPEGs


def test_device_decode_on_cpu_gives_pillows_pixels():
    """torchvision's CPU decoder (what `data.decode: device` runs without a GPU) gives
    Pillow's pixels for RGB and grayscale JPEGs, in either channel count."""
    rgb = encoded(photo(33, 47, 7), quality=90)
    gray = encoded(photo(20, 18, 8, "L"), quality=90)
    assert device_decodable(read_header(rgb), rgb) and device_decodable(read_header(gray), gray)
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in (rgb, gray)]
    for channels, mode in ((3, "RGB"), (1, "L")):
        out = decode_on_device(tensors, "cpu", channels)
        assert [tuple(t.shape) for t in out] == [(channels, 33, 47), (channels, 20, 18)]
        assert torch.equal(out[0], whole(rgb, mode)[0]) and torch.equal(out[1], whole(gray, mode)[0])


def test_a_progressive_jpeg_is_left_to_the_worker():
    """nvjpeg decodes a progressive JPEG on its hybrid path (Huffman decoding on the main
    process's CPU, one image at a time): `data.decode: device` leaves it to the worker."""
    for mode in ("RGB", "L"):
        baseline = encoded(photo(40, 56, 3, mode), quality=90)
        progressive = encoded(photo(40, 56, 3, mode), quality=90, progressive=True)
        assert not read_header(baseline).progressive and read_header(progressive).progressive
        assert device_decodable(read_header(baseline), baseline)
        assert not device_decodable(read_header(progressive), progressive)


@pytest.mark.parametrize("content, what", [
    (b"", "empty file"), (b"not an image at all\n", "not an image"),
])
def test_bad_bytes_are_named(tmp_path, content, what):
    with pytest.raises(DataError, match=what) as err:
        read_header(content, name="shard-0001.tar:cat.jpg")
    assert err.value.lines[0].startswith("shard-0001.tar:cat.jpg: ")
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(DataError, match=what) as err:
        crop_resize(path, (0, 0, 1, 1), (8, 8), 1, "RGB")
    assert err.value.lines[0].startswith(f"{path}: ")


def test_truncated_and_gone_files_are_named(tmp_path):
    data = encoded(photo(64, 64), quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    header = read_header(cut)  # the header is whole: the size reads
    assert header.hw == (64, 64)
    with pytest.raises(DataError, match="truncated") as err:
        crop_resize(cut, (0, 0, 64, 64), (32, 32), 1, "RGB", header=header)
    assert err.value.lines[0].startswith(str(cut))
    with pytest.raises(DataError, match="truncated"):
        load_image(data[:300], "RGB", name="mem.jpg")
    with pytest.raises(DataError, match="the file is gone"):
        read_header(Path(tmp_path / "nothing.jpg"))
    changed = tmp_path / "changed.jpg"
    changed.write_bytes(encoded(photo(30, 30)))
    with pytest.raises(DataError, match="changed while it was read"):
        crop_resize(changed, (0, 0, 10, 10), (8, 8), 1, "RGB", header=header)


def test_device_decode_names_the_file_it_cannot_decode():
    """A truncated JPEG is left to the worker (which names it); a file the device decoder
    refuses anyway is named, found among the batch's files."""
    good = encoded(photo(300, 400, 9), quality=90)
    cut = good[: len(good) // 2]
    assert read_header(cut).is_jpeg and not device_decodable(read_header(cut), cut)
    assert device_decodable(read_header(good), good + b"\0\0")  # padded after its end: whole
    broken = good[:200] + b"\xff\xd9"  # a header, then the end marker: no image data
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in (good, broken)]
    with pytest.raises(DataError, match=r"^b\.jpg: the cpu JPEG decoder cannot decode it") as err:
        decode_on_device(tensors, "cpu", 3, names=["a.jpg", "b.jpg"])
    assert "\n" not in str(err.value) and "decode_jpeg.cpp" not in str(err.value)
