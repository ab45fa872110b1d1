"""OpenL3 weights: Keras HDF5 conversion, download with checksums, import, the cache (never downloading) and the
messages."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from sidecar.analyzers.embedding.keras import keras_state_dict, load_keras_weights, read_keras_h5
from sidecar.analyzers.embedding.openl3 import OpenL3Mel128
from sidecar.analyzers.embedding.weights import (
    OPENL3_MEL128_MUSIC,
    WeightsChecksumError,
    WeightsError,
    WeightsFormatError,
    WeightsMissingError,
    cached_path,
    cached_weights,
    configured_weights,
    download_weights,
    git_blob_sha1,
    import_weights,
)
from sidecar.settings import EmbeddingSettings
from tests.unit.embedding.keras_files import (
    LEGACY_NAMES,
    TF2_NAMES,
    WeightsFixture,
    WeightsServer,
    spec_for,
    write_keras_h5,
)


def test_git_blob_sha1_matches_git_hash_object() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


@pytest.mark.parametrize("names", [LEGACY_NAMES, TF2_NAMES], ids=["keras2-names", "tf2-names"])
def test_read_keras_h5_returns_weighted_layers_in_model_order(tmp_path: Path, names: list[str]) -> None:
    path = tmp_path / "w.h5"
    write_keras_h5(path, names=names, seed=1)
    assert [layer.name for layer in read_keras_h5(path)] == names


def test_keras_state_dict_transposes_kernels_and_maps_batch_norm(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    values = write_keras_h5(path, names=LEGACY_NAMES, seed=2)
    state = keras_state_dict(OpenL3Mel128(), read_keras_h5(path))
    kernel = values[3]["kernel"]  # second convolution, Keras (h, w, in, out)
    assert torch.equal(state["convs.1.weight"], torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))


def test_keras_state_dict_maps_moving_variance_to_running_var(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    values = write_keras_h5(path, names=LEGACY_NAMES, seed=3)
    state = keras_state_dict(OpenL3Mel128(), read_keras_h5(path))
    assert torch.equal(state["norms.2.running_var"], torch.from_numpy(values[4]["moving_variance"]))


def test_load_keras_weights_sets_every_weight_of_the_network(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    values = write_keras_h5(path, names=TF2_NAMES, seed=4)
    network = OpenL3Mel128()
    load_keras_weights(network, path)
    assert torch.equal(network.state_dict()["convs.7.bias"], torch.from_numpy(values[15]["bias"]))


def test_converted_network_matches_a_numpy_forward_pass_of_the_first_block(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    values = write_keras_h5(path, names=LEGACY_NAMES, seed=5)
    network = OpenL3Mel128()
    load_keras_weights(network, path)
    audio = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 48000)).astype(np.float32) * 0.1)
    with torch.inference_mode():
        image = network.frontend(audio)[0, 0].numpy().astype(np.float64)  # (128, 199)
        got = network.convs[0](network.norms[0](network.frontend(audio)))[0].numpy()
    bn = values[0]
    normed = (image - bn["moving_mean"][0]) / np.sqrt(bn["moving_variance"][0] + 1e-3) * bn["gamma"][0] + bn["beta"][0]
    padded = np.pad(normed, 1)
    kernel, bias = values[1]["kernel"][:, :, 0, :], values[1]["bias"]  # (3, 3, 64)
    expected = np.full((64, 128, 199), bias[:, None, None], dtype=np.float64)
    for dy in range(3):
        for dx in range(3):
            expected += kernel[dy, dx][:, None, None] * padded[None, dy : dy + 128, dx : dx + 199]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_read_keras_h5_reads_a_whole_saved_model(tmp_path: Path) -> None:
    import h5py

    weights_path, model_path = tmp_path / "w.h5", tmp_path / "model.h5"
    write_keras_h5(weights_path, names=TF2_NAMES, seed=8)
    with h5py.File(weights_path, "r") as src, h5py.File(model_path, "w") as dst:
        group = dst.create_group("model_weights")
        for name in src:
            src.copy(src[name], group)
        for key, value in src.attrs.items():
            group.attrs[key] = value
    assert [layer.name for layer in read_keras_h5(model_path)] == TF2_NAMES


def test_read_keras_h5_rejects_a_file_without_layer_names(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsFormatError, match="layer_names"):
        read_keras_h5(path)


def test_keras_state_dict_rejects_a_wrong_kernel_shape(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    write_keras_h5(path, names=LEGACY_NAMES, seed=6)
    layers = read_keras_h5(path)
    layers[1].weights["kernel"] = np.zeros((5, 5, 1, 64), np.float32)
    with pytest.raises(WeightsFormatError, match=r"kernel.*\(5, 5, 1, 64\)"):
        keras_state_dict(OpenL3Mel128(), layers)


def test_keras_state_dict_rejects_a_missing_layer(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    write_keras_h5(path, names=LEGACY_NAMES, seed=6)
    with pytest.raises(WeightsFormatError, match="15 layers with weights, the network 16"):
        keras_state_dict(OpenL3Mel128(), read_keras_h5(path)[:-1])


def test_download_weights_stores_the_verified_file(
    tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer
) -> None:
    url = weights_server.serve("/models/w.h5.gz", random_weights.path.read_bytes())
    spec = dataclasses.replace(random_weights.spec, url=url)
    path = download_weights(spec, tmp_path / "models")
    assert path.read_bytes() == random_weights.path.read_bytes()


def test_download_weights_with_a_wrong_sha256_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer
) -> None:
    url = weights_server.serve("/models/w.h5.gz", random_weights.path.read_bytes())
    spec = dataclasses.replace(random_weights.spec, url=url, sha256="0" * 64)
    with pytest.raises(WeightsChecksumError, match=r"SHA-256 [0-9a-f]{64}, expected 0{64}"):
        download_weights(spec, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_download_weights_rejects_bytes_that_are_not_the_official_file(
    tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer
) -> None:
    url = weights_server.serve("/models/w.h5.gz", b"<html>rate limited</html>")
    spec = dataclasses.replace(random_weights.spec, url=url, sha256=None)
    with pytest.raises(WeightsChecksumError, match="git blob SHA-1"):
        download_weights(spec, tmp_path / "models")


def test_download_weights_http_error_names_the_fix_commands(
    tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer
) -> None:
    spec = dataclasses.replace(random_weights.spec, url=weights_server.base_url + "/missing.h5.gz")
    with pytest.raises(WeightsMissingError, match=r"sonantica models fetch.*sonantica models import FILE"):
        download_weights(spec, tmp_path / "models")


def test_download_weights_refuses_a_file_url(tmp_path: Path, random_weights: WeightsFixture) -> None:
    spec = dataclasses.replace(random_weights.spec, url=random_weights.path.as_uri())
    with pytest.raises(WeightsError, match="'file' URL"):
        download_weights(spec, tmp_path / "models")


def test_cached_weights_without_the_file_names_the_fix_commands_and_downloads_nothing(
    tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer
) -> None:
    spec = dataclasses.replace(random_weights.spec, url=weights_server.serve("/w", random_weights.path.read_bytes()))
    with pytest.raises(WeightsMissingError, match=r"not in the model cache.*sonantica models fetch"):
        cached_weights(spec, tmp_path / "models")
    assert weights_server.requests == []


def test_cached_weights_removes_a_corrupt_file_without_downloading(
    tmp_path: Path, random_weights: WeightsFixture, weights_server: WeightsServer
) -> None:
    spec = dataclasses.replace(random_weights.spec, url=weights_server.serve("/w", random_weights.path.read_bytes()))
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    cached_path(spec, model_dir).write_bytes(b"truncated")
    with pytest.raises(WeightsChecksumError, match=r"removed.*sonantica models fetch"):
        cached_weights(spec, model_dir)
    assert (list(model_dir.iterdir()), weights_server.requests) == ([], [])


def test_import_weights_copies_a_verified_file(tmp_path: Path, random_weights: WeightsFixture) -> None:
    path = import_weights(random_weights.spec, random_weights.path, tmp_path / "models")
    assert path == cached_path(random_weights.spec, tmp_path / "models")


def test_import_weights_of_a_decompressed_h5_says_to_import_the_gz(
    tmp_path: Path, random_weights: WeightsFixture
) -> None:
    h5_path = tmp_path / "openl3_audio_mel128_music.h5"
    h5_path.write_bytes(gzip.decompress(random_weights.path.read_bytes()))
    with pytest.raises(WeightsChecksumError, match=r"import the published \.h5\.gz"):
        import_weights(random_weights.spec, h5_path, tmp_path / "models")


def test_import_weights_of_a_wrong_file_names_that_file_not_a_temporary_one(
    tmp_path: Path, random_weights: WeightsFixture
) -> None:
    wrong = tmp_path / "downloads" / "openl3_audio_mel128_music-v0_4_0.h5.gz"
    wrong.parent.mkdir()
    wrong.write_bytes(random_weights.path.read_bytes() + b"\0")
    with pytest.raises(WeightsChecksumError) as caught:
        import_weights(random_weights.spec, wrong, tmp_path / "models")
    message = str(caught.value)
    assert (message.startswith(f"{wrong} is not the official"), ".partial" in message) == (True, False)
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_import_weights_of_a_missing_file_is_a_clear_error(tmp_path: Path, random_weights: WeightsFixture) -> None:
    with pytest.raises(WeightsMissingError, match="no such file"):
        import_weights(random_weights.spec, tmp_path / "nope.h5.gz", tmp_path / "models")


def test_spec_without_sha256_still_checks_the_git_blob(tmp_path: Path, random_weights: WeightsFixture) -> None:
    spec = spec_for(random_weights.path, with_sha256=False)
    other = tmp_path / "other.h5.gz"
    other.write_bytes(random_weights.path.read_bytes() + b"\0")
    with pytest.raises(WeightsChecksumError, match="git blob SHA-1"):
        import_weights(spec, other, tmp_path / "models")


def test_configured_weights_pins_the_sha256_and_mirror_from_settings() -> None:
    config = EmbeddingSettings(weights_url="http://mirror.example/w.h5.gz", weights_sha256="ab" * 32)
    spec = configured_weights(config, "openl3-music-mel128-512")
    assert spec == dataclasses.replace(OPENL3_MEL128_MUSIC, url="http://mirror.example/w.h5.gz", sha256="ab" * 32)


def test_configured_weights_of_a_model_without_weights_is_none() -> None:
    assert configured_weights(EmbeddingSettings(), "timbre-v1") is None


def test_embedding_settings_reject_a_malformed_sha256() -> None:
    with pytest.raises(ValidationError, match="weights_sha256"):
        EmbeddingSettings(weights_sha256="not-a-digest")
