"""The suite's shared fixtures live in ``tests/fixtures/``; this file only loads them."""

pytest_plugins = (
    "tests.fixtures.keys",
    "tests.fixtures.databases",
    "tests.fixtures.redis",
    "tests.fixtures.plugins",
    "tests.fixtures.tokens",
    "tests.fixtures.agent_sign_in",
)
