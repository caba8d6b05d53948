"""Run by Python at start-up when this directory is on PYTHONPATH (the end-to-end tests put it
there): with $MNISTGAN_PARAMS_LOG set, log what the process reads (mnistgan_tools.params_log)."""

import os

if os.environ.get("MNISTGAN_PARAMS_LOG"):
    from mnistgan_tools import params_log

    params_log.install(os.environ["MNISTGAN_PARAMS_LOG"])
