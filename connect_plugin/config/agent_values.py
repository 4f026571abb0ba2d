"""Parsers for the agent sign-in settings (``oidc_*``, ``alb_*``, ``agent_*``).

They follow ``values.py``: ``parse(value, ctx)`` checks one raw value and
raises a ``ConfigError`` naming the key, never the value.  What spans several
settings (a mode's required keys, reading ``*_file`` secrets) is in ``load.py``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from . import values as v

#: An Application Load Balancer's ARN: partition, region, account, name and id.
ALB_ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):elasticloadbalancing:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):"
    r"\d{12}:loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,32}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token
_CLAIM = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")


def secure_url(value: Any, ctx: v.Context) -> str:
    """An https URL, or http on a loopback address (a test provider); ``""`` when not set."""
    text = v.url(value, ctx)
    if text and urlsplit(text).scheme != "https" and not v.is_loopback(urlsplit(text).hostname or ""):
        raise ctx.fail("must be an https URL (http only on a loopback address)")
    return text


def client_id(value: Any, ctx: v.Context) -> str:
    """An OAuth client id: printable, no spaces."""
    text = v.string(value, ctx) if value is not None else ""
    if text and not (len(text) <= 256 and _SCOPE.match(text)):
        raise ctx.fail("must be printable characters without spaces (at most 256)")
    return text


def file_path(value: Any, ctx: v.Context) -> str:
    """A file's path (relative to the config file's folder), as an absolute path; ``""`` when not set."""
    text = v.string(value, ctx) if value is not None else ""
    return str(v.resolve(text, ctx.base_dir)) if text else ""


def scopes(value: Any, ctx: v.Context) -> tuple[str, ...]:
    """OAuth scopes, as a list or one space- or comma-separated string; ``openid`` is always asked for."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    items = v.string_list(lambda s: bool(_SCOPE.match(s)), "each must be a scope name without spaces")(value, ctx)
    return ("openid", *(s for s in dict.fromkeys(items) if s != "openid"))


def claim_name(value: Any, ctx: v.Context) -> str:
    """The name of a token claim (``groups``, ``roles``, ``cognito:groups``)."""
    text = v.string(value, ctx).strip()
    if not _CLAIM.match(text):
        raise ctx.fail("must be a claim name such as groups or roles")
    return text


def groups(value: Any, ctx: v.Context) -> tuple[str, ...]:
    """Group names or ids, as they appear in the groups claim (case matters)."""
    items = v.string_list(lambda s: 0 < len(s.strip()) <= 256, "each must be a group name or id")(value, ctx)
    return tuple(s.strip() for s in items)


def domains(value: Any, ctx: v.Context) -> tuple[str, ...]:
    """E-mail domains such as ``gemeente.nl`` (lower-cased; a leading ``@`` is dropped)."""
    items = v.string_list()(value, ctx)
    out = tuple(s.strip().lower().lstrip("@") for s in items)
    if not all(_DOMAIN.match(d) for d in out):
        raise ctx.fail("each must be a domain name such as gemeente.nl")
    return out


def alb_arn(value: Any, ctx: v.Context) -> str:
    """An Application Load Balancer's ARN (``arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/...``)."""
    text = v.string(value, ctx).strip() if value is not None else ""
    if text and not ALB_ARN.match(text):
        raise ctx.fail("must be an Application Load Balancer ARN: "
                       "arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>")
    return text


def key_url(value: Any, ctx: v.Context) -> str:
    """A URL template with ``{kid}`` (and optionally ``{region}``): where the ALB's public keys are."""
    text = v.string(value, ctx).strip() if value is not None else ""
    if not text:
        return ""
    names = set(re.findall(r"\{([^{}]*)\}", text))
    if "kid" not in names or not names <= {"kid", "region"}:
        raise ctx.fail("must contain {kid} (and may contain {region}), e.g. "
                       "https://public-keys.auth.elb.{region}.amazonaws.com/{kid}")
    secure_url(text.replace("{kid}", "kid").replace("{region}", "region"), ctx)
    return text
