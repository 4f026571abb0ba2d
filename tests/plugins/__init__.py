"""Plugins the tests install: on ``PYTHONPATH`` for ``connect-plugin serve`` processes, or registered in-process."""
