"""What a logit cache keys on: hashes of a dataset's labels and of its content."""

from __future__ import annotations

import hashlib

from torch.utils.data import Dataset

__all__ = ["dataset_fingerprint", "subset_fingerprint"]


def dataset_fingerprint(ds: Dataset) -> dict[str, str]:
    """`labels_sha256` and `content_sha256` of a dataset: its own `fingerprint()` where it
    has one, else hashes of every label and image (slow for big datasets: give yours a
    `fingerprint()`)."""
    if hasattr(ds, "fingerprint"):
        return ds.fingerprint()
    labels, content = hashlib.sha256(), hashlib.sha256()
    for i in range(len(ds)):  # type: ignore[arg-type]
        img, label = ds[i]
        labels.update(f"{int(label)}\n".encode())
        content.update(img.tobytes() if hasattr(img, "tobytes") else repr(img).encode())
    return {"labels_sha256": labels.hexdigest(), "content_sha256": content.hexdigest()}


def subset_fingerprint(base: Dataset, length: int) -> dict[str, str]:
    """The hashes of the first `length` samples of `base` (a subset is other data)."""
    return {k: hashlib.sha256(f"{v}|first {length}".encode()).hexdigest()
            for k, v in dataset_fingerprint(base).items()}
