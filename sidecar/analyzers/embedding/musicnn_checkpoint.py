"""Read a TensorFlow (1.x/2.x) checkpoint without TensorFlow: the "tensor bundle" format.

A checkpoint ``PREFIX`` is two files:

- ``PREFIX.index``: a LevelDB-format sorted table (SSTable) mapping each variable name to a ``BundleEntryProto``
  (dtype, shape, shard, byte offset and size); the empty key holds the ``BundleHeaderProto``;
- ``PREFIX.data-00000-of-00001``: the raw little-endian tensor bytes, one after another.

Only what the MusiCNN checkpoints use is supported: one data shard, uncompressed table blocks, unsliced tensors of
type float32, float64, int32 or int64. Anything else is a :class:`CheckpointError` naming the file. Integrity is
checked by the caller (pinned SHA-256 of both files, see :mod:`.musicnn_weights`); here every structure is
bounds-checked so a truncated or foreign file gives a clear error, never a wrong tensor.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
_BLOCK_TRAILER_BYTES = 5  # compression type (1 byte) + masked CRC32C (4 bytes)
_DTYPES: dict[int, np.dtype[np.generic]] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    9: np.dtype("<i8"),  # DT_INT64
}


class CheckpointError(ValueError):
    """The checkpoint files are missing, truncated or not a supported tensor bundle."""


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """Where one variable lies in the data file: dtype code, shape, byte offset and size."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CheckpointError(f"{where}: truncated or malformed varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, where: str) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a protobuf message: varints as ints, length-delimited as bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos, where)
            if pos + length > len(buf):
                raise CheckpointError(f"{where}: truncated protobuf field {number}")
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise CheckpointError(f"{where}: truncated protobuf field {number}")
            out.append((number, int.from_bytes(buf[pos : pos + 4], "little")))
            pos += 4
        elif wire == 1:
            if pos + 8 > len(buf):
                raise CheckpointError(f"{where}: truncated protobuf field {number}")
            out.append((number, int.from_bytes(buf[pos : pos + 8], "little")))
            pos += 8
        else:
            raise CheckpointError(f"{where}: unsupported protobuf wire type {wire}")
    return out


def _shape(buf: bytes, where: str) -> tuple[int, ...]:
    dims: list[int] = []
    for number, value in _fields(buf, where):
        if number == 2 and isinstance(value, bytes):  # TensorShapeProto.dim
            size = next((v for n, v in _fields(value, where) if n == 1 and isinstance(v, int)), 0)
            dims.append(size)
        elif number == 3 and value:  # unknown_rank
            raise CheckpointError(f"{where}: tensor of unknown rank")
    return tuple(dims)


def _entry(buf: bytes, where: str) -> TensorEntry:
    values: dict[int, int | bytes] = {}
    for number, value in _fields(buf, where):
        if number == 7:
            raise CheckpointError(f"{where}: sliced (partitioned) tensors are not supported")
        values[number] = value
    shape = values.get(2, b"")
    if not isinstance(shape, bytes):
        raise CheckpointError(f"{where}: malformed shape")

    def integer(field: int) -> int:
        value = values.get(field, 0)
        if not isinstance(value, int):
            raise CheckpointError(f"{where}: malformed field {field}")
        return value

    return TensorEntry(integer(1), _shape(shape, where), integer(3), integer(4), integer(5))


def _block(data: bytes, offset: int, size: int, where: str) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one table block (prefix-compressed keys, restart array at the end)."""
    end = offset + size
    if offset < 0 or end + _BLOCK_TRAILER_BYTES > len(data) or size < 4:
        raise CheckpointError(f"{where}: block handle out of range (truncated file?)")
    if data[end] != 0:
        raise CheckpointError(f"{where}: compressed table blocks are not supported")
    block = data[offset:end]
    (n_restarts,) = struct.unpack_from("<I", block, size - 4)
    limit = size - 4 - 4 * n_restarts
    if limit < 0:
        raise CheckpointError(f"{where}: malformed block")
    entries: list[tuple[bytes, bytes]] = []
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos, where)
        unshared, pos = _varint(block, pos, where)
        value_length, pos = _varint(block, pos, where)
        if shared > len(key) or pos + unshared + value_length > limit:
            raise CheckpointError(f"{where}: malformed block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def read_index(index_path: Path) -> dict[str, TensorEntry]:
    """Every variable of the checkpoint whose index file is ``index_path``, by name."""
    where = str(index_path)
    try:
        data = index_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {where}: {exc.strerror or exc}") from None
    if len(data) < _FOOTER_BYTES:
        raise CheckpointError(f"{where}: too short for a checkpoint index")
    footer = data[-_FOOTER_BYTES:]
    if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise CheckpointError(f"{where}: not a TensorFlow checkpoint index (bad table magic)")
    _, pos = _varint(footer, 0, where)  # metaindex handle: offset
    _, pos = _varint(footer, pos, where)  # metaindex handle: size
    index_offset, pos = _varint(footer, pos, where)
    index_size, _ = _varint(footer, pos, where)
    entries: dict[str, TensorEntry] = {}
    for _, handle in _block(data, index_offset, index_size, where):
        offset, pos = _varint(handle, 0, where)
        size, _ = _varint(handle, pos, where)
        for key, value in _block(data, offset, size, where):
            if key:  # the empty key is the BundleHeaderProto
                name = key.decode("utf-8", errors="replace")
                entries[name] = _entry(value, f"{where} ({name})")
    if not entries:
        raise CheckpointError(f"{where}: the checkpoint holds no tensors")
    return entries


def read_checkpoint(index_path: Path, data_path: Path) -> dict[str, npt.NDArray[np.generic]]:
    """All tensors of a single-shard checkpoint: its ``.index`` file and its ``.data-00000-of-00001`` file."""
    entries = read_index(index_path)
    try:
        data = data_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {data_path}: {exc.strerror or exc}") from None
    tensors: dict[str, npt.NDArray[np.generic]] = {}
    for name, entry in entries.items():
        where = f"{data_path} ({name})"
        if entry.shard_id != 0:
            raise CheckpointError(f"{where}: multi-shard checkpoints are not supported")
        dtype = _DTYPES.get(entry.dtype)
        if dtype is None:
            raise CheckpointError(f"{where}: unsupported tensor dtype code {entry.dtype}")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if entry.size != count * dtype.itemsize or entry.offset + entry.size > len(data):
            raise CheckpointError(f"{where}: size {entry.size} does not fit shape {entry.shape} (truncated file?)")
        array = np.frombuffer(data, dtype, count, entry.offset).reshape(entry.shape)
        tensors[name] = array.astype(dtype.newbyteorder("="))
    return tensors
