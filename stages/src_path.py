"""Make ``import mnistgan`` load the library of THIS checkout (../src), not an installed copy.

Every stage script imports this module first. Without it, a stage would import whichever
mnistgan the environment has installed, e.g. the editable install of the main workspace
while DVC runs a queued experiment in its own temporary copy (`dvc exp run --queue`): the
experiment would then run the workspace's current code, not the code it was queued with and
whose files dvc.lock records as the stage's deps.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
if SRC not in sys.path[:1]:
    sys.path.insert(0, SRC)
