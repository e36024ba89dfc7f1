"""The checkpoint format: weights and training state (`weights`), and the run folder's
manifest, `run.json`, that every file of a run is checked against (`run_files`).

Both are read by the engine and by plug-ins (a `checkpoint:` teacher loads a run's
weights, checked against its run's `run.json`), so they sit below both.
"""

from .run_files import (
    HASHED,
    RUN_FILES,
    RUN_FORMAT,
    RUN_MANIFEST,
    UNHASHED,
    RunFiles,
    check_run_file,
    is_run_temporary,
)
from .weights import (
    FORMAT,
    REQUIRED_METADATA,
    SHA256_KEY,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    describe_misfit,
    file_sha256,
    load_state,
    load_weights,
    read_metadata,
    save_state,
    save_weights,
    state_bytes,
    state_dict_sha256,
    temporary_target,
    weights_bytes,
    weights_metadata,
    weights_sha256,
)

__all__ = [
    "FORMAT",
    "HASHED",
    "REQUIRED_METADATA",
    "RUN_FILES",
    "RUN_FORMAT",
    "RUN_MANIFEST",
    "SHA256_KEY",
    "UNHASHED",
    "RunFiles",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_run_file",
    "describe_misfit",
    "file_sha256",
    "is_run_temporary",
    "load_state",
    "load_weights",
    "read_metadata",
    "save_state",
    "save_weights",
    "state_bytes",
    "state_dict_sha256",
    "temporary_target",
    "weights_bytes",
    "weights_metadata",
    "weights_sha256",
]
