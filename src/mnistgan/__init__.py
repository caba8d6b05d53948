"""mnistgan: a reproducible re-run of two MNIST GAN studies as one DVC pipeline.

The library holds all logic; the scripts under ``stages/`` only read params, call it and
write outputs. Nothing here does work at import time.
"""

__version__ = "0.1.0"
