"""Finding input files and reading them: gzip by magic bytes, content hash of the decompressed bytes."""

from __future__ import annotations

import glob
import gzip
import hashlib
from pathlib import Path

from circuitlake.errors import UserError

GZIP_MAGIC = b"\x1f\x8b"


def expand(paths: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Files named by `paths` (files, folders searched recursively, or globs), ending in `suffixes`; sorted, unique."""
    found: set[Path] = set()
    for p in paths:
        matches = [Path(m) for m in glob.glob(p, recursive=True)] or [Path(p)]
        for m in matches:
            if m.is_dir():
                found.update(f for f in m.rglob("*") if f.is_file() and f.name.endswith(suffixes))
            elif m.is_file():
                found.add(m)
            else:
                raise UserError(f"{p}: no such file or folder")
    return sorted(f.resolve() for f in found)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (whatever its name says)."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw


def content_size(path: Path) -> int:
    """Bytes of the file's content: its size, or for gzip the size its trailer records (modulo 4 GiB,
    as gzip keeps it; a truncated file's trailer is garbage: an estimate, never trusted further)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(2) != GZIP_MAGIC or size < 18:
            return size
        f.seek(-4, 2)
        return int.from_bytes(f.read(4), "little")


def open_stream(path: Path):
    """(raw file, stream of decompressed bytes): read the stream, use the raw file for progress/offsets."""
    raw = path.open("rb")
    gz = raw.read(2) == GZIP_MAGIC
    raw.seek(0)
    return raw, (gzip.GzipFile(fileobj=raw) if gz else raw)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Streaming sha256 of the decompressed content (so a .json and its .json.gz hash alike)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    with gzip.open(path, "rb") if gz else path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
