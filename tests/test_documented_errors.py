"""Every 4xx that the OpenAPI description documents, reached over real HTTP, with the body it documents.

One row per (operation, status): the settings the plugin runs with, the
request, and the status, ``error`` word and headers expected.  Each row starts
its own plugin on a fresh SQLite file, makes a live session where the request
needs one, sends the request, and checks the answer against the description's
schema for that status.  ``test_every_documented_client_error_has_a_row`` keeps
the table and the description in step.

Rows for statuses that other work adds are marked ``xfail(strict=True)``: they
fail today, and turn into failures (to remove the mark) once the feature lands.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from tornado.httputil import HTTPServerRequest

from connect_plugin.hookspecs import hookimpl
from connect_plugin.model import Agent
from tests.support import Api, Response, dtmf_of

LINK_TOKEN = "documented-errors-link-token"
CONTACT = "0c8e7f52-9d1a-4b3e-8f6a-5e2d1c0b9a87"
AGENT_HEADER = "X-Test-Agent"
OUTSIDER = "outsider"
METRICS = pytest.mark.xfail(strict=True, reason="lands with the metrics part of issue 14")
