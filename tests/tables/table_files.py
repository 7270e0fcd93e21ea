"""Writing deliberately wrong table files for the load tests of every table type."""

import json

from tinyembed.io import safetensors


def rewrite(good, bad, arrays, **config_changes):
    """Write ``arrays`` to ``bad`` with the metadata (table type and config) of the ``good`` file,
    the config changed by ``config_changes``."""
    _, metadata = safetensors.read_header(good)
    if config_changes:
        config = {**json.loads(metadata["tinyembed.config"]), **config_changes}
        metadata = {**metadata, "tinyembed.config": json.dumps(config)}
    safetensors.save(arrays, bad, metadata=metadata)
