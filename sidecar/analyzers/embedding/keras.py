"""Keras HDF5 weights -> the PyTorch OpenL3 network: read the file, check every layer's shapes, convert.

Imports PyTorch, so the analyzer imports this module only when it loads OpenL3 (the command line and the timbre
model start without it).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from sidecar.analyzers.embedding.openl3 import OpenL3Mel128
from sidecar.analyzers.embedding.weights import WeightsFormatError


@dataclass(frozen=True, slots=True)
class KerasLayer:
    """The weights of one Keras layer as stored in an HDF5 weights file, by short name (``kernel``, ``gamma``)."""

    name: str
    weights: dict[str, npt.NDArray[np.float32]]


_BATCH_NORM_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
_CONV_WEIGHTS = ("kernel", "bias")


def _text(value: object) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras_h5(file: str | os.PathLike[str] | IO[bytes]) -> list[KerasLayer]:
    """The layers that carry weights, in model order, from a Keras HDF5 file (``Model.save_weights`` or ``save``).

    The order is the ``layer_names`` attribute's, which is the model's layer order: Keras itself loads such a file
    by this order, not by name (layer names carry session-dependent counters such as ``conv2d_8``).
    """
    import h5py

    try:
        with h5py.File(file, "r") as h5_file:
            # A whole saved model (``Model.save``) keeps the same layout under ``model_weights``.
            h5 = h5_file.get("model_weights", h5_file)
            if "layer_names" not in h5.attrs:
                raise WeightsFormatError("not a Keras weights file: no 'layer_names' attribute")
            layers: list[KerasLayer] = []
            for layer_name in (_text(n) for n in h5.attrs["layer_names"]):
                group = h5[layer_name]
                weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
                if not weight_names:
                    continue
                weights = {
                    name.rsplit("/", 1)[-1].removesuffix(":0"): np.asarray(group[name], dtype=np.float32)
                    for name in weight_names
                }
                layers.append(KerasLayer(layer_name, weights))
            return layers
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsFormatError(f"cannot read Keras weights: {exc}") from exc


def _expect(layer: KerasLayer, names: tuple[str, ...], shapes: tuple[tuple[int, ...], ...]) -> None:
    if set(layer.weights) != set(names):
        raise WeightsFormatError(f"layer {layer.name!r} has weights {sorted(layer.weights)}, expected {sorted(names)}")
    for name, shape in zip(names, shapes, strict=True):
        if layer.weights[name].shape != shape:
            raise WeightsFormatError(
                f"layer {layer.name!r} weight {name!r} has shape {layer.weights[name].shape}, expected {shape}"
            )


def keras_state_dict(model: OpenL3Mel128, layers: list[KerasLayer]) -> dict[str, torch.Tensor]:
    """Map Keras layers onto ``model``: a ``state_dict`` with every weight and running statistic of the network.

    Convolution kernels go from Keras (height, width, in, out) to PyTorch (out, in, height, width); batch norm
    gamma/beta/moving mean/moving variance become weight/bias/running_mean/running_var. Raises
    :class:`WeightsFormatError` on any difference in layer count, weight names or shapes.
    """
    targets = model.keras_layers()
    if len(layers) != len(targets):
        raise WeightsFormatError(f"weights file has {len(layers)} layers with weights, the network {len(targets)}")
    prefix = {id(module): name for name, module in model.named_modules()}
    state: dict[str, torch.Tensor] = {}
    for layer, module in zip(layers, targets, strict=True):
        base = prefix[id(module)]
        if isinstance(module, nn.BatchNorm2d):
            _expect(layer, _BATCH_NORM_WEIGHTS, ((module.num_features,),) * 4)
            for keras_name, torch_name in zip(
                _BATCH_NORM_WEIGHTS, ("weight", "bias", "running_mean", "running_var"), strict=True
            ):
                state[f"{base}.{torch_name}"] = torch.from_numpy(layer.weights[keras_name].copy())
        else:
            out_c, in_c, kh, kw = module.weight.shape
            _expect(layer, _CONV_WEIGHTS, ((kh, kw, in_c, out_c), (out_c,)))
            kernel = np.ascontiguousarray(layer.weights["kernel"].transpose(3, 2, 0, 1))
            state[f"{base}.weight"] = torch.from_numpy(kernel)
            state[f"{base}.bias"] = torch.from_numpy(layer.weights["bias"].copy())
    return state


def load_keras_weights(model: OpenL3Mel128, file: str | os.PathLike[str] | IO[bytes]) -> None:
    """Load a Keras HDF5 weights file into ``model`` in place (every parameter and running statistic)."""
    state = keras_state_dict(model, read_keras_h5(file))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Buffers that are not weights (the STFT window, the mel basis, batch-norm counters) stay as built.
    left = [k for k in missing if not k.startswith("frontend.") and not k.endswith("num_batches_tracked")]
    if left or unexpected:
        raise WeightsFormatError(f"weights do not cover the network: missing {left}, unexpected {unexpected}")


def open_gzip_h5(path: Path) -> io.BytesIO:
    """Decompress a ``.h5.gz`` into memory (about 18 MB for OpenL3) for :func:`read_keras_h5`."""
    try:
        with gzip.open(path, "rb") as handle:
            return io.BytesIO(handle.read())
    except (OSError, EOFError, zlib.error) as exc:
        raise WeightsFormatError(f"cannot decompress {path}: {exc}") from exc
