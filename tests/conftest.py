from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Trio runs inside each example, so per-example time varies with the machine:
# no deadline. CI runs more examples than a developer's quick loop.
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# pytester runs the pytest plugin's own tests (tests/test_plugin.py) in a fresh session.
# _redis_server starts the redis-server that tests/test_redis*.py use.
pytest_plugins = ["pytester", "_redis_server"]
