"""Fixtures for the embedding tests: Keras-layout weight files with random values, and a local weights server.

No test downloads anything from the internet: the official OpenL3 weights cannot be fetched here, so tests build
files with the official layout (layer order, weight names and shapes of ``openl3_audio_mel128_music.h5``) and
random values, and serve them from a real HTTP server on 127.0.0.1 when a download is under test.
"""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.unit.embedding.keras_files import LEGACY_NAMES, WeightsFixture, WeightsServer, spec_for, write_keras_h5


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> WeightsFixture:
    """Random OpenL3 weights in the official layout, gzipped like the release file (built once per session)."""
    directory = tmp_path_factory.mktemp("weights")
    h5_path = directory / "openl3_audio_mel128_music.h5"
    values = write_keras_h5(h5_path, names=LEGACY_NAMES, seed=7)
    gz_path = directory / "openl3_audio_mel128_music-v0_4_0.h5.gz"
    with h5_path.open("rb") as src, gzip.open(gz_path, "wb", compresslevel=1) as dst:
        dst.write(src.read())
    return WeightsFixture(gz_path, spec_for(gz_path), values)


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}  # noqa: RUF012 - set per server subclass
    requests: list[str] = []  # noqa: RUF012

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def weights_server() -> Iterator[WeightsServer]:
    class Handler(_Handler):
        files: dict[str, bytes] = {}  # noqa: RUF012 - this server's own
        requests: list[str] = []  # noqa: RUF012

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WeightsServer(f"http://127.0.0.1:{server.server_address[1]}", Handler.requests, Handler.files)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
