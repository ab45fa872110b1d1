"""Helpers for the embedding tests: Keras-layout weight files with random values (official layer order, weight
names and shapes of ``openl3_audio_mel128_music.h5``), the spec that accepts such a file, and the server handle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from sidecar.analyzers.embedding.weights import WeightsSpec, digest_file

CHANNELS = (64, 64, 128, 128, 256, 256, 512, 512)

# Layer names as Keras 2 numbered them in the session that exported the official file (the audio model was built
# after the vision model, so counters do not start at 1); the converter must not depend on them.
LEGACY_NAMES = [
    name
    for i in range(8)
    for name in (f"batch_normalization_{9 + i}", "audio_embedding_layer" if i == 7 else f"conv2d_{8 + i}")
]
# Names a fresh TensorFlow 2 session gives the same network.
TF2_NAMES = [
    name
    for i in range(8)
    for name in (
        "batch_normalization" if i == 0 else f"batch_normalization_{i}",
        "audio_embedding_layer" if i == 7 else ("conv2d" if i == 0 else f"conv2d_{i}"),
    )
]


def official_layout() -> list[tuple[str, dict[str, tuple[int, ...]]]]:
    """(kind, {weight name: shape}) of the 16 weighted layers of the OpenL3 mel128 audio model, in order."""
    layers: list[tuple[str, dict[str, tuple[int, ...]]]] = []
    in_channels = 1
    for out_channels in CHANNELS:
        layers.append(("bn", {k: (in_channels,) for k in ("gamma", "beta", "moving_mean", "moving_variance")}))
        layers.append(("conv", {"kernel": (3, 3, in_channels, out_channels), "bias": (out_channels,)}))
        in_channels = out_channels
    return layers


def write_keras_h5(path: Path, *, names: list[str], seed: int) -> list[dict[str, npt.NDArray[np.float32]]]:
    """Write a Keras 2 ``save_weights`` HDF5 file with the official layout and random values; return the values.

    Weightless layers (input, activations, pooling) are listed in ``layer_names`` between the weighted ones, as
    Keras does.
    """
    rng = np.random.default_rng(seed)
    values: list[dict[str, npt.NDArray[np.float32]]] = []
    layer_names: list[str] = ["input_2"]
    with h5py.File(path, "w") as h5:
        h5.create_group("input_2").attrs["weight_names"] = np.array([], dtype="S1")
        h5.attrs["backend"] = b"tensorflow"
        h5.attrs["keras_version"] = b"2.2.4"
        for index, ((kind, shapes), name) in enumerate(zip(official_layout(), names, strict=True)):
            group = h5.create_group(name)
            arrays: dict[str, npt.NDArray[np.float32]] = {}
            for weight, shape in shapes.items():
                if weight == "moving_variance":
                    data = rng.uniform(0.5, 2.0, shape)
                elif kind == "conv" and weight == "kernel":
                    data = rng.normal(0.0, np.sqrt(2.0 / (9 * shape[2])), shape)
                else:
                    data = rng.normal(0.0, 0.1, shape) + (1.0 if weight == "gamma" else 0.0)
                arrays[weight] = data.astype(np.float32)
                group.create_dataset(f"{name}/{weight}:0", data=arrays[weight])
            group.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in shapes]
            values.append(arrays)
            layer_names.append(name)
            if kind == "conv" and name != "audio_embedding_layer":
                layer_names.append(f"activation_{index}")
                h5.create_group(f"activation_{index}").attrs["weight_names"] = np.array([], dtype="S1")
        h5.attrs["layer_names"] = [n.encode() for n in layer_names]
    return values


@dataclass
class WeightsFixture:
    """A gzipped random-weights file, the spec that accepts it, and its values (in layer order)."""

    path: Path
    spec: WeightsSpec
    values: list[dict[str, npt.NDArray[np.float32]]] = field(repr=False)


def spec_for(path: Path, *, url: str = "http://127.0.0.1:9/none", with_sha256: bool = True) -> WeightsSpec:
    digest = digest_file(path)
    return WeightsSpec(
        model="openl3-music-mel128-512",
        filename="openl3_audio_mel128_music-v0_4_0.h5.gz",
        url=url,
        git_blob_sha1=digest.git_blob_sha1,
        sha256=digest.sha256 if with_sha256 else None,
        source="test fixture",
    )


@dataclass
class WeightsServer:
    """A real HTTP server on 127.0.0.1 serving exactly the files given; anything else is a 404."""

    base_url: str
    requests: list[str]
    files: dict[str, bytes]

    def serve(self, url_path: str, body: bytes) -> str:
        self.files[url_path] = body
        return self.base_url + url_path
