"""Print the fixed standardisation constants of the ``timbre-v1`` embedding (``sidecar/analyzers/embedding/timbre.py``).

The constants are the statistics of the raw timbre features over a reference corpus of generic full mixes (drums,
bass, chords and melody): ``tempo_key_corpus(24, seed=0)`` from the ground-truth generator, which shares no piece
with the instrument corpus the quality figures are measured on. Centre = per-dimension mean; scale = one value per
feature group, the root mean square of the group's per-dimension standard deviations. Values are rounded to two
significant digits. They are frozen in ``timbre-v1``: re-running this script documents where they came from; a
change would be a new model (``timbre-v2``).

    python scripts/timbre_reference.py [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.embedding.timbre import GROUPS, TimbreExtractor
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus


def _sig2(value: float) -> float:
    return float(f"{value:.2g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, default=Path(".pytest_cache/d/corpus"))
    args = parser.parse_args()
    raws = []
    for path in cached_corpus(tempo_key_corpus(24, seed=0), args.cache_dir):
        extractor = TimbreExtractor()
        with AudioReader(path) as reader:
            for block in reader.blocks():
                extractor.feed(block.mono)
        raws.append(extractor.raw_features())
    table = np.array(raws)
    mean, std = table.mean(axis=0), table.std(axis=0)
    start = 0
    print("_CENTER = {")
    for group, size in GROUPS.items():
        values = ", ".join(repr(_sig2(v)) for v in mean[start : start + size])
        print(f'    "{group}": ({values},),')
        start += size
    print("}")
    start = 0
    print("_GROUP_SCALE = {")
    for group, size in GROUPS.items():
        print(f'    "{group}": {_sig2(float(np.sqrt(np.mean(std[start : start + size] ** 2))))!r},')
        start += size
    print("}")


if __name__ == "__main__":
    main()
