"""Input and output sizes of the OpenL3 audio network, without importing PyTorch (see :mod:`.openl3`)."""

SAMPLE_RATE_HZ = 48000
"""Input rate of the network; one window is one second at this rate."""
EMBEDDING_DIM = 512
"""Length of one window's embedding."""
