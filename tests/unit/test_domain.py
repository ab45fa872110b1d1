"""Key spelling, Camelot and Open Key notation."""

from __future__ import annotations

import pytest

from sidecar.domain import PITCH_CLASSES, KeySignature, Mode

CAMELOT_MAJOR = {
    "C": "8B",
    "G": "9B",
    "D": "10B",
    "A": "11B",
    "E": "12B",
    "B": "1B",
    "F#": "2B",
    "C#": "3B",
    "G#": "4B",
    "D#": "5B",
    "A#": "6B",
    "F": "7B",
}
CAMELOT_MINOR = {
    "A": "8A",
    "E": "9A",
    "B": "10A",
    "F#": "11A",
    "C#": "12A",
    "G#": "1A",
    "D#": "2A",
    "A#": "3A",
    "F": "4A",
    "C": "5A",
    "G": "6A",
    "D": "7A",
}


@pytest.mark.parametrize(("tonic", "camelot"), sorted(CAMELOT_MAJOR.items()))
def test_key_camelot_major_matches_the_wheel(tonic: str, camelot: str) -> None:
    assert KeySignature(tonic, "major").camelot == camelot


@pytest.mark.parametrize(("tonic", "camelot"), sorted(CAMELOT_MINOR.items()))
def test_key_camelot_minor_matches_the_wheel(tonic: str, camelot: str) -> None:
    assert KeySignature(tonic, "minor").camelot == camelot


def test_key_open_key_of_c_major_and_a_minor() -> None:
    assert KeySignature("C", "major").open_key == "1d"
    assert KeySignature("A", "minor").open_key == "1m"
    assert KeySignature("F", "major").open_key == "12d"


@pytest.mark.parametrize("mode", ["major", "minor"])
@pytest.mark.parametrize("tonic", PITCH_CLASSES)
def test_key_notations_round_trip(tonic: str, mode: Mode) -> None:
    key = KeySignature(tonic, mode)
    assert KeySignature.parse(key.camelot) == key
    assert KeySignature.parse(key.open_key) == key
    assert KeySignature.parse(key.name) == key


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Am", "A minor"),
        ("a min", "A minor"),
        ("Bbm", "A# minor"),
        ("Db major", "C# major"),
        ("C#", "C# major"),
        ("E♭ minor", "D# minor"),
        ("Cb", "B major"),
        ("8A", "A minor"),
        ("12d", "F major"),
        ("F# Minor", "F# minor"),
    ],
)
def test_key_parse_normalises_to_one_spelling(text: str, name: str) -> None:
    assert KeySignature.parse(text).name == name


@pytest.mark.parametrize("text", ["", "H minor", "13A", "C dorian", "x"])
def test_key_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="key"):
        KeySignature.parse(text)


def test_key_compatible_neighbours_on_the_camelot_wheel() -> None:
    assert set(KeySignature("A", "minor").compatible_camelot()) == {"8A", "7A", "9A", "8B"}
    assert set(KeySignature("B", "major").compatible_camelot()) == {"1B", "12B", "2B", "1A"}
