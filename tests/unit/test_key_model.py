"""The fitted key classifier: rotation, standardisation, fitting on synthetic chroma, the shipped weights."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from sidecar.analyzers.key import KRUMHANSL_KESSLER, key_of_template, key_templates
from sidecar.analyzers.key_model import (
    DEFAULT_KEY_MODEL,
    KeyModel,
    candidate_features,
    fit_key_model,
    probabilities,
    standardised,
)

Vector = npt.NDArray[np.float64]
_TEMPLATES = key_templates(KRUMHANSL_KESSLER, harmonic_decay=0.6)


def _noisy_examples(n: int, seed: int, noise: float) -> list[tuple[Vector, Vector, int]]:
    """Chroma = a Krumhansl-Kessler key template plus noise (the upper chroma another draw), every key in turn."""
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(n):
        index = i % 24
        main = np.clip(_TEMPLATES[index] + noise * rng.standard_normal(12), 0.0, None)
        upper = np.clip(_TEMPLATES[index] + noise * rng.standard_normal(12), 0.0, None)
        examples.append((main / main.sum(), upper / upper.sum(), index))
    return examples


def test_key_model_fitted_on_noisy_templates_classifies_new_ones() -> None:
    examples = _noisy_examples(240, seed=0, noise=1.0)
    features = np.stack([candidate_features(main, upper) for main, upper, _ in examples])
    model = fit_key_model(features, np.array([index for _, _, index in examples]), l2_penalty=1e-2)
    held_out = _noisy_examples(240, seed=1, noise=1.0)
    correct = [int(np.argmax(model.scores(main, upper))) == index for main, upper, index in held_out]
    assert float(np.mean(correct)) >= 0.9
    assert model.l2_penalty == 1e-2


def test_candidate_features_give_the_model_scores() -> None:
    rng = np.random.default_rng(4)
    main, upper = rng.random(12), rng.random(12)
    weights = np.concatenate(
        [
            DEFAULT_KEY_MODEL.main_major,
            DEFAULT_KEY_MODEL.main_minor,
            DEFAULT_KEY_MODEL.upper_major,
            DEFAULT_KEY_MODEL.upper_minor,
        ]
    )
    assert candidate_features(main, upper) @ weights == pytest.approx(DEFAULT_KEY_MODEL.scores(main, upper))


def test_key_model_scores_rotate_with_the_chroma() -> None:
    rng = np.random.default_rng(2)
    main, upper = rng.random(12), rng.random(12)
    scores = DEFAULT_KEY_MODEL.scores(main, upper)
    for shift in (1, 5, 11):
        shifted = DEFAULT_KEY_MODEL.scores(np.roll(main, shift), np.roll(upper, shift))
        assert shifted[:12] == pytest.approx(np.roll(scores[:12], shift))
        assert shifted[12:] == pytest.approx(np.roll(scores[12:], shift))


def test_key_model_ignores_loudness_of_the_chroma() -> None:
    rng = np.random.default_rng(3)
    main, upper = rng.random(12), rng.random(12)
    assert DEFAULT_KEY_MODEL.scores(3.0 * main, 0.1 * upper) == pytest.approx(DEFAULT_KEY_MODEL.scores(main, upper))


@pytest.mark.parametrize("index", [0, 7, 12, 21])
def test_default_key_model_reads_a_template_as_its_key(index: int) -> None:
    """The shipped weights give the key of a clean harmonic Krumhansl-Kessler template, in both registers."""
    template = _TEMPLATES[index]
    assert key_of_template(int(np.argmax(DEFAULT_KEY_MODEL.scores(template, template)))) == key_of_template(index)


def test_standardised_flat_or_empty_chroma_is_zero() -> None:
    assert not standardised(np.full(12, 1 / 12)).any()
    assert not standardised(np.zeros(12)).any()
    z = standardised(np.arange(12, dtype=np.float64))
    assert float(z.mean()) == pytest.approx(0.0)
    assert float(z.std()) == pytest.approx(1.0)


def test_probabilities_sum_to_one_and_keep_the_order() -> None:
    p = probabilities(np.array([1000.0, 999.0, 0.0]))
    assert float(p.sum()) == pytest.approx(1.0)
    assert p[0] > p[1] > p[2]


def test_key_model_rejects_wrong_lengths_and_no_examples() -> None:
    with pytest.raises(ValueError, match="main_minor needs 12"):
        KeyModel(
            main_major=(0.0,) * 12,
            main_minor=(0.0,) * 11,
            upper_major=(0.0,) * 12,
            upper_minor=(0.0,) * 12,
            l2_penalty=0,
        )
    with pytest.raises(ValueError, match="no examples"):
        fit_key_model(np.zeros((0, 24, 48)), np.zeros(0, np.int64), l2_penalty=1e-3)
