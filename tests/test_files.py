"""Checked files: checksums written with every episode and checkpoint and verified on load (a
flipped byte names the damaged tensor), files from before checksums still load and say so, and
sizes are checked before a file is read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import ntmviz
from ntmviz import Episode, FileFormatError, checkpoint
from ntmviz.files import (
    ABSENT, CHECKSUM_KEY, HASH_KEY, MAX_EPISODE_BYTES, MB, VERIFIED, read_file, read_safetensors, seal,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "checkpoints").glob("*.safetensors"))


@pytest.fixture
def episode():
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=7, memory_width=5,
                                        controller_size=9))
    return ntmviz.record(model, (torch.rand(6, 4) > 0.5).float(), meta={"task": "synthetic"})


def split(data: bytes) -> tuple[dict, int]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), 8 + n


def same_arrays(a: Episode, b: Episode) -> bool:
    return a.arrays().keys() == b.arrays().keys() and all(
        np.array_equal(a.arrays()[k], b.arrays()[k]) for k in a.arrays()) and a.meta == b.meta


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


# ---- what is written --------------------------------------------------------------------------------
def test_sealed_episode_is_plain_safetensors_with_a_sha256_of_its_data(episode, tmp_path):
    path = episode.save(tmp_path / "e.safetensors")
    data = path.read_bytes()
    header, start = split(data)
    meta = header["__metadata__"]
    # the modelspec convention: "0x" + SHA-256 of every byte after the header
    assert meta[HASH_KEY] == "0x" + hashlib.sha256(data[start:]).hexdigest()
    assert start % 8 == 0  # data stays 8-byte aligned, as safetensors writes it
    crc = json.loads(meta[CHECKSUM_KEY])["crc32"]
    assert set(crc) == set(episode.arrays())
    # plain safetensors reads every array and the metadata
    plain = st_load(data)
    for name, array in episode.arrays().items():
        np.testing.assert_array_equal(plain[name], array)
    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata()["format"] == "ntmviz-episode" and f.metadata()[HASH_KEY] == meta[HASH_KEY]
    loaded = Episode.load(path)
    assert loaded.checksum == VERIFIED and same_arrays(loaded, episode)


def test_seal_keeps_the_data_section_byte_for_byte(episode):
    plain = st_save({k: np.ascontiguousarray(v) for k, v in episode.arrays().items()},
                    metadata={"format": "ntmviz-episode", "version": "1", "meta": "{}"})
    sealed = seal(plain)
    assert sealed[split(sealed)[1]:] == plain[split(plain)[1]:]
    assert seal(sealed) == sealed  # sealing again changes nothing


# ---- what is verified -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["memory", "read.weights", "write.add", "inputs"])
def test_a_flipped_byte_in_episode_data_names_the_damaged_array(episode, tmp_path, name):
    data = episode.to_bytes()
    header, start = split(data)
    begin, end = header[name]["data_offsets"]
    damaged = flip(data, start + (begin + end) // 2)
    with pytest.raises(FileFormatError, match=rf"damaged: its tensor data does not match .*\(damaged: {name}\)$"):
        Episode.from_bytes(damaged, "e.safetensors")
    (tmp_path / "e.safetensors").write_bytes(damaged)
    with pytest.raises(FileFormatError, match="e.safetensors: damaged"):
        Episode.load(tmp_path / "e.safetensors")


def test_a_flipped_byte_in_checkpoint_weights_names_the_damaged_tensor(tmp_path):
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=7, memory_width=5))
    path = checkpoint.save(tmp_path / "c.safetensors", model, step=3)
    assert checkpoint.load(path).checksum == VERIFIED
    data = path.read_bytes()
    header, start = split(data)
    name = next(k for k in header if k.startswith("model/") and "weight" in k)
    begin, _ = header[name]["data_offsets"]
    path.write_bytes(flip(data, start + begin + 5))
    with pytest.raises(FileFormatError, match=rf"c.safetensors: damaged: .*\(damaged: {name}\)"):
        checkpoint.load(path)


def test_a_changed_header_value_is_damage(episode):
    data = episode.to_bytes()
    header, start = split(data)
    raw = data[8:start]
    changed = raw.replace(b'\\"synthetic\\"', b'\\"synthetiC\\"')
    assert changed != raw and len(changed) == len(raw)
    with pytest.raises(FileFormatError, match="damaged: its header does not match"):
        Episode.from_bytes(data[:8] + changed + data[start:])


def test_a_mangled_checksum_field_is_damage(episode):
    data = episode.to_bytes()
    header, start = split(data)
    raw = data[8:start]
    changed = raw.replace(b'header_sha256', b'header_sha2X6')
    with pytest.raises(FileFormatError, match="damaged: its checksum fields are incomplete"):
        Episode.from_bytes(data[:8] + changed + data[start:])


def test_files_written_before_checksums_load_and_say_so(episode):
    old = st_save({k: np.ascontiguousarray(v) for k, v in episode.arrays().items()},
                  metadata={"format": "ntmviz-episode", "version": "1", "meta": json.dumps(episode.meta)})
    loaded = Episode.from_bytes(old)
    assert loaded.checksum == ABSENT and same_arrays(loaded, episode)
    assert read_safetensors(old, "old", "ntmviz-episode", 1).checksum == ABSENT


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoints_load_with_their_checksums_verified(path):
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    ckpt = checkpoint.load(path, device="cpu")
    assert ckpt.checksum == VERIFIED and ckpt.integrity == "checksums verified"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # loading never rewrites a file


def test_a_recorded_episode_has_no_file_to_vouch_for(episode):
    assert episode.checksum is None


# ---- sizes, checked before reading -----------------------------------------------------------------
def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.safetensors"
    with path.open("wb") as f:  # sparse: 200 MB of zeros that take no disk space
        f.truncate(200 * MB)
    # were it read, the zeros would fail as "not an ntmviz-episode file"; the size check comes first
    with pytest.raises(FileFormatError) as info:
        Episode.load(path)
    assert str(info.value) == f"{path}: too large (200.0 MB, limit {MAX_EPISODE_BYTES // MB} MB)"


def test_read_file_limits(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1500)
    assert read_file(path, "episode", limit=1500) == b"x" * 1500
    with pytest.raises(FileFormatError, match=r"f.bin: too large \(0.0 MB, limit 0 MB\)"):
        read_file(path, "episode", limit=1499)
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match="f.bin: empty file"):
        read_file(path, "episode", limit=1500)
    with pytest.raises(FileFormatError, match="no such episode file"):
        read_file(tmp_path / "missing", "episode", limit=1500)


def test_uploaded_bytes_over_the_limit_are_refused(episode, monkeypatch):
    import ntmviz.episode as episode_module

    data = episode.to_bytes()
    monkeypatch.setattr(episode_module, "MAX_EPISODE_BYTES", len(data) - 1)
    with pytest.raises(FileFormatError, match=r"up.safetensors: too large \("):
        Episode.from_bytes(data, "up.safetensors")
    with pytest.raises(FileFormatError, match="up.safetensors: empty file"):
        Episode.from_bytes(b"", "up.safetensors")


def test_the_shipped_checkpoints_are_found():
    assert len(SHIPPED) >= 8, SHIPPED  # else the checks above ran on nothing


# ---- atomic_write: the umask is the process's, never touched -------------------------------------
def _umask_now() -> int | None:
    """The process's umask read without setting it (Linux: /proc/self/status), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return None


def test_atomic_write_never_sets_the_umask(tmp_path, monkeypatch):
    """A served app writes from many threads: flipping the umask for a moment would give another
    thread's new file (or folder) the wrong permissions."""
    import os
    import threading

    from ntmviz import files

    def no_umask(*args):
        raise AssertionError("atomic_write set the process's umask")

    monkeypatch.setattr(files.os, "umask", no_umask)
    files.atomic_write(tmp_path / "a.bin", b"x")
    monkeypatch.undo()
    if _umask_now() is None:
        pytest.skip("no /proc/self/status to watch the umask from another thread")
    # and, watched from another thread the whole time, it never moves
    before, seen, stop = _umask_now(), set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add(_umask_now())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(300):
            files.atomic_write(tmp_path / f"f{i % 7}.bin", os.urandom(64))
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert seen == {before}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_gives_the_permissions_of_any_new_file(tmp_path, umask):
    import os
    import stat

    from ntmviz.files import atomic_write

    old = os.umask(umask)  # the test sets the process's umask (nothing else runs here), then restores it
    try:
        path = atomic_write(tmp_path / "sub" / "file.bin", b"data")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"data")
        assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask
        atomic_write(path, b"new")  # replacing keeps to the same rule
        assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]  # no temporary left


def test_atomic_write_never_writes_through_a_planted_temporary(tmp_path, monkeypatch):
    """The temporary name is new and made by this call (O_EXCL): a symlink planted at it is skipped."""
    from ntmviz import files

    target = tmp_path / "victim.txt"
    target.write_text("keep")
    names = iter(["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".out.bin.aaaaaaaaaaaa.tmp").symlink_to(target)
    files.atomic_write(tmp_path / "out.bin", b"new")
    assert target.read_text() == "keep" and (tmp_path / "out.bin").read_bytes() == b"new"
