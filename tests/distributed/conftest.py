"""One local Ray for the whole folder: started once (2 CPUs), shut down at the end.

Tests that need actors take ``ray_local``; the shared ``servers`` (4 actors of 0.25 CPU)
hold the tables of the exactness tests, so those cost no actor start-up each. Tests that
start their own actors (faults, checkpoints) close them, so the 2 CPUs never run out.
Without Ray the tests that need it skip (the layouts, shards and command-line checks still
run); under CI Ray must be installed (it is in the test extra): a missing Ray fails, not skips.
"""

import importlib.util
import os

import pytest

if importlib.util.find_spec("ray") is None and os.environ.get("CI"):
    raise pytest.UsageError("CI needs ray==2.60.0 for tests/distributed: pip install -e '.[test]'")


@pytest.fixture(scope="package")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[distributed]')")
    if ray.is_initialized():  # a test elsewhere left one running: start clean, with 2 CPUs
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="package")
def servers(ray_local):
    from tinyembed.distributed import ShardServers

    group = ShardServers(4, timeout=60)
    try:
        yield group
    finally:
        group.close()
