"""Byte-level ustar crafting for hostile-archive tests: every field is written here, by hand, so a
test can put exactly the bytes that Python's tarfile refuses to write (a size of -1, base-256
numbers, a NUL inside a name, a wrong checksum, a symlink member...)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field, replace

BLOCK = 512


def octal(value: int, width: int) -> bytes:
    """`width - 1` octal digits and a NUL, as GNU tar writes them."""
    return f"{value:0{width - 1}o}".encode() + b"\0"


@dataclass
class Member:
    name: str
    data: bytes = b""
    mode: int = 0o644
    uname: str = "root"
    gname: str = "root"
    type: bytes = b"0"
    linkname: bytes = b""
    mtime: int = 1_800_000_000
    # Raw overrides: the exact bytes of a field (None: computed from the values above).
    name_field: bytes | None = None
    prefix_field: bytes | None = None
    mode_field: bytes | None = None
    size_field: bytes | None = None
    magic_field: bytes | None = None
    checksum_delta: int = 0

    def header(self) -> bytes:
        h = bytearray(BLOCK)

        def put(offset: int, width: int, raw: bytes):
            assert len(raw) <= width, (offset, raw)
            h[offset:offset + len(raw)] = raw

        put(0, 100, self.name_field if self.name_field is not None else self.name.encode())
        put(100, 8, self.mode_field if self.mode_field is not None else octal(self.mode, 8))
        put(108, 8, octal(0, 8))
        put(116, 8, octal(0, 8))
        put(124, 12, self.size_field if self.size_field is not None else octal(len(self.data), 12))
        put(136, 12, octal(self.mtime, 12))
        h[156:157] = self.type
        put(157, 100, self.linkname)
        put(257, 8, self.magic_field if self.magic_field is not None else b"ustar\x0000")
        put(265, 32, self.uname.encode())
        put(297, 32, self.gname.encode())
        if self.prefix_field is not None:
            put(345, 155, self.prefix_field)
        h[148:156] = b" " * 8
        checksum = sum(h) + self.checksum_delta
        h[148:156] = f"{checksum:06o}".encode() + b"\0 "
        return bytes(h)

    def encode(self) -> bytes:
        body = self.data if self.type in (b"0", b"\0") else b""
        return self.header() + body + b"\0" * ((BLOCK - len(body) % BLOCK) % BLOCK)


def tar(members: list[Member], end: bytes = b"\0" * (2 * BLOCK)) -> bytes:
    return b"".join(m.encode() for m in members) + end


def gz(data: bytes) -> bytes:
    return gzip.compress(data, 9, mtime=0)


@dataclass
class Bundle:
    """A plain bundle taken apart: the manifest (a dict) and the members in archive order."""
    manifest: dict
    members: list[Member] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> "Bundle":
        members = []
        manifest = None
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as t:
            for info in t.getmembers():
                body = t.extractfile(info).read() if info.isfile() else b""
                if info.name == "MANIFEST.json":
                    manifest = json.loads(body)
                    continue
                members.append(Member(name=info.name + ("/" if info.isdir() else ""), data=body, mode=info.mode,
                                      uname=info.uname, gname=info.gname, type=b"5" if info.isdir() else b"0",
                                      mtime=int(info.mtime)))
        assert manifest is not None
        return cls(manifest=manifest, members=members)

    def copy(self) -> "Bundle":
        return Bundle(manifest=json.loads(json.dumps(self.manifest)), members=[replace(m) for m in self.members])

    def member(self, suffix: str) -> Member:
        return next(m for m in self.members if m.name.rstrip("/").endswith(suffix))

    def entry(self, suffix: str) -> dict:
        return next(e for e in self.manifest["files"] + self.manifest["directories"] if e["path"].endswith(suffix))

    def set_data(self, suffix: str, data: bytes) -> None:
        """New bytes for a file, with the manifest's sha256 and size kept consistent."""
        self.member(suffix).data = data
        e = self.entry(suffix)
        e["sha256"] = hashlib.sha256(data).hexdigest()
        e["size"] = len(data)

    def set_mode(self, suffix: str, mode: int) -> None:
        """The same mode in the manifest and the member header (a consistent hostile bundle)."""
        self.member(suffix).mode = mode
        self.entry(suffix)["mode"] = f"{mode:04o}"

    def set_owner(self, suffix: str, owner: str, group: str) -> None:
        m = self.member(suffix)
        m.uname, m.gname = owner, group
        e = self.entry(suffix)
        e["owner"], e["group"] = owner, group

    def manifest_member(self) -> Member:
        return Member(name="MANIFEST.json", data=(json.dumps(self.manifest, indent=2) + "\n").encode(), mode=0o600)

    def tar(self, end: bytes = b"\0" * (2 * BLOCK)) -> bytes:
        return tar([self.manifest_member(), *self.members], end=end)

    def tgz(self) -> bytes:
        return gz(self.tar())
