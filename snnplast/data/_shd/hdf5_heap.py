"""A check of an HDF5 variable-length dataset's storage, made before libhdf5 reads it.

The values of a variable-length dataset live in "global heap collections"; each element of the
dataset is a descriptor (number of values, collection address, object index). A damaged
collection (a flipped bit in an object's size) can send libhdf5 into a loop it never leaves,
which no Python-level timeout can interrupt. So the collections are walked here, in Python, from
the raw bytes, against the HDF5 file format (version 1 global heap: ``GCOL``, version, 3
reserved bytes, collection size; then objects of index (2 bytes), reference count (2), reserved
(4), size, data padded to 8 bytes; index 0 is the free space that ends it), and every descriptor
must point to an object of exactly its size. Layouts this does not know (chunked or compact
storage) are left to libhdf5.
"""

from __future__ import annotations

import os

import h5py


class HeapDamage(ValueError):
    """The variable-length storage of a dataset contradicts itself."""


def _int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _collection(raw, address: int, sizeof_size: int, file_size: int) -> dict[int, int]:
    """Object index -> object size of the global heap collection at `address`."""
    head_size = 8 + sizeof_size
    if address + head_size > file_size:
        raise HeapDamage(f"heap collection at {address} lies beyond the end of the file")
    raw.seek(address)
    head = raw.read(head_size)
    size = _int(head[8:])
    if head[:4] != b"GCOL" or size < head_size or address + size > file_size:
        raise HeapDamage(f"no valid heap collection at {address}")
    body = raw.read(size - head_size)
    objects: dict[int, int] = {}
    pos, object_head = 0, 8 + sizeof_size
    while pos + object_head <= len(body):
        index = _int(body[pos : pos + 2])
        if index == 0:
            break
        length = _int(body[pos + 8 : pos + object_head])
        start = pos + object_head
        if length > len(body) - start or index in objects:
            raise HeapDamage(f"heap collection at {address}: object {index} is damaged")
        objects[index] = length
        pos = start + (length + 7) // 8 * 8
    return objects


def check_vlen_storage(path: str | os.PathLike, f: h5py.File, name: str) -> None:
    """Raise :class:`HeapDamage` (naming the element) if dataset `name` of the open file `f`
    (at `path`) has descriptors that do not match its heap objects."""
    ds = f[name]
    sizeof_addr, sizeof_size = f.id.get_create_plist().get_sizes()
    record = 4 + sizeof_addr + 4
    n = ds.shape[0] if ds.ndim == 1 else 0
    offset = ds.id.get_offset()
    if not n or offset is None or ds.id.get_storage_size() != n * record:
        return  # not contiguous descriptors: nothing this check knows how to read
    item = ds.id.get_type().get_super().get_size()
    file_size = os.path.getsize(path)
    collections: dict[int, dict[int, int]] = {}
    with open(path, "rb") as raw:
        raw.seek(offset)
        descriptors = raw.read(n * record)
        if len(descriptors) != n * record:
            raise HeapDamage(f"{name}: its descriptors lie beyond the end of the file")
        for i in range(n):
            rec = descriptors[i * record : (i + 1) * record]
            length = _int(rec[:4])
            if length == 0:
                continue
            address = _int(rec[4 : 4 + sizeof_addr])
            index = _int(rec[4 + sizeof_addr :])
            if address not in collections:
                collections[address] = _collection(raw, address, sizeof_size, file_size)
            stored = collections[address].get(index)
            if stored != length * item:
                raise HeapDamage(
                    f"{name}[{i}] is damaged: {length} values of {item} bytes, but its heap "
                    f"object holds {stored} bytes"
                )
