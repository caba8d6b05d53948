"""A tiny configuration of the whole pipeline for end-to-end tests (seconds, not minutes).

Overrides are applied on top of the repository's params.yaml, so a new params section is
picked up with its defaults and only the expensive knobs are turned down here.
"""

from __future__ import annotations

import copy

TINY_OVERRIDES: dict[str, object] = {
    "data.train_limit": 1200,
    "data.test_limit": 500,
    "data.tsne_samples": 100,
    "data.tsne_perplexity": 10,
    "lenet.epochs": 3,
    "lenet.batch_size": 32,
    "lenet.lr": 0.003,
    "lenet.channels": [8, 16],
    "lenet.hidden": [32, 24],
}


def apply_overrides(params: dict, overrides: dict[str, object]) -> dict:
    """Return a copy of ``params`` with dotted keys replaced; an unknown key is an error."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        node = out
        *path, last = dotted.split(".")
        for k in path:
            node = node[k]
        if last not in node:
            raise KeyError(f"override of unknown param {dotted}")
        node[last] = value
    return out
