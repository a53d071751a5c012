"""Fingerprints of exported files: how file sources know what they have already loaded.

A file's cursor is its size and the SHA-256 of its content. An unchanged file is skipped;
a file that grew and whose first `size` bytes still hash to the cursor's was appended
to, so only its new bytes need reading (`Fingerprint.appended_to`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    size: int
    sha256: str

    def __str__(self) -> str:
        return f"size={self.size};sha256={self.sha256}"

    @classmethod
    def parse(cls, text: str | None) -> "Fingerprint | None":
        if not text:
            return None
        fields = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
        if "size" not in fields or "sha256" not in fields:
            return None
        return cls(int(fields["size"]), fields["sha256"])


def file_fingerprint(path: Path, prefix: int | None = None,
                     limit: int | None = None) -> tuple[Fingerprint, str | None]:
    """The file's fingerprint (of its first `limit` bytes only, when given), and the
    SHA-256 of its first `prefix` bytes (when asked and the file is at least that long),
    in one read."""
    digest, prefix_digest, read = hashlib.sha256(), None, 0
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK if limit is None else min(CHUNK, limit - read)):
            if prefix is not None and prefix_digest is None and read + len(chunk) >= prefix:
                head = prefix - read
                digest.update(chunk[:head])
                prefix_digest = digest.hexdigest()
                digest.update(chunk[head:])
            else:
                digest.update(chunk)
            read += len(chunk)
    if prefix == 0:
        prefix_digest = hashlib.sha256().hexdigest()
    return Fingerprint(read, digest.hexdigest()), prefix_digest


def fingerprint(path: Path) -> Fingerprint:
    return file_fingerprint(path)[0]
