"""Generated music with known tempo/key/instrument: the demo library and the test corpus."""
