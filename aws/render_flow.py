"""Render ``contact-flow.json`` for one Amazon Connect instance: real Lambda and queue ARNs, the plugin's code length.

``contact-flow.json`` holds placeholders where the flow names resources of a
particular AWS account.  This script writes a copy that names yours, ready for
the flow designer's *Import*, or for ``aws connect create-contact-flow --content``::

    python aws/render_flow.py \\
        --lambda-arn arn:aws:lambda:eu-central-1:111122223333:function:id-contact-assign-id \\
        --queue-arn arn:aws:connect:eu-central-1:111122223333:instance/<instance id>/queue/<queue id> \\
        --config sample/config.toml -o contact-flow.rendered.json

The code length comes from ``--dtmf-length``, or from the plugin's settings
file (``--config``: its ``dtmf_length``, read as the plugin reads it).  The
prompts are left as they are: edit them in the designer, or in a copy.

Standard library only.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FLOW = HERE / "contact-flow.json"

#: What contact-flow.json names in place of resources of a real account.
LAMBDA_PLACEHOLDER = "arn:aws:lambda:REGION:ACCOUNT_ID:function:FUNCTION_NAME"
QUEUE_PLACEHOLDER = "arn:aws:connect:REGION:ACCOUNT_ID:instance/INSTANCE_ID/queue/QUEUE_ID"

# The ARN shapes AWS documents for a Lambda function (optionally a version or
# alias) and for an Amazon Connect queue.
_LAMBDA_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:function:[a-zA-Z0-9_.-]+"
                         r"(:(\$LATEST|[a-zA-Z0-9_-]+))?")
_QUEUE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:connect:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:instance/[-a-zA-Z0-9]+"
                        r"/queue/[-a-zA-Z0-9]+")
#: The plugin's own bounds for dtmf_length.
MIN_LENGTH, MAX_LENGTH = 6, 32
PROFILE_ENV = ("CONNECT_PLUGIN_PROFILE", "ROCKET_PROFILE")


class RenderError(ValueError):
    """An argument cannot go into the flow; the message says which and why."""


def load_flow(path: Path = FLOW) -> dict[str, Any]:
    """The flow as stored (with placeholders)."""
    flow: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return flow


def render(flow: dict[str, Any], *, lambda_arn: str | None = None, queue_arn: str | None = None,
           dtmf_length: int | None = None) -> dict[str, Any]:
    """A copy of ``flow`` with the placeholders and the code length replaced where given."""
    if lambda_arn is not None and not _LAMBDA_ARN.fullmatch(lambda_arn):
        raise RenderError("--lambda-arn must be a Lambda function ARN: "
                          "arn:aws:lambda:<region>:<account>:function:<name>")
    if queue_arn is not None and not _QUEUE_ARN.fullmatch(queue_arn):
        raise RenderError("--queue-arn must be a queue ARN: "
                          "arn:aws:connect:<region>:<account>:instance/<instance id>/queue/<queue id>")
    if dtmf_length is not None and not MIN_LENGTH <= dtmf_length <= MAX_LENGTH:
        raise RenderError(f"the code length must be between {MIN_LENGTH} and {MAX_LENGTH}, as the plugin's dtmf_length")
    out = copy.deepcopy(flow)
    for action in out["Actions"]:
        params = action.get("Parameters", {})
        if action["Type"] == "InvokeLambdaFunction" and lambda_arn is not None \
                and params.get("LambdaFunctionARN") == LAMBDA_PLACEHOLDER:
            params["LambdaFunctionARN"] = lambda_arn
        elif action["Type"] == "UpdateContactTargetQueue" and queue_arn is not None \
                and params.get("QueueId") == QUEUE_PLACEHOLDER:
            params["QueueId"] = queue_arn
        elif action["Type"] == "GetParticipantInput" and dtmf_length is not None:
            params["InputValidation"]["CustomValidation"]["MaximumLength"] = str(dtmf_length)
    return out


def placeholders_left(flow: dict[str, Any]) -> list[str]:
    """Identifiers of the actions that still name a placeholder resource."""
    left = []
    for action in flow["Actions"]:
        params = action.get("Parameters", {})
        if LAMBDA_PLACEHOLDER in params.values() or QUEUE_PLACEHOLDER in params.values():
            left.append(action["Identifier"])
    return left


def dtmf_length_from_config(path: Path, environ: dict[str, str] | None = None) -> int:
    """``dtmf_length`` from the plugin's TOML settings: ``[default]``, the profile table, then ``[global]`` win."""
    environ = dict(os.environ) if environ is None else environ
    profile = next((environ[name].strip().lower() for name in PROFILE_ENV if environ.get(name)), "release")
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    merged: dict[str, Any] = {}
    for table in ("default", profile, "global"):
        section = doc.get(table, {})
        if isinstance(section, dict):
            merged.update(section)
    for name in ("ROCKET_DTMF_LENGTH", "CONNECT_PLUGIN_DTMF_LENGTH"):  # later wins, as in the plugin
        if environ.get(name, "").strip().isdigit():
            merged["dtmf_length"] = int(environ[name])
    value = merged.get("dtmf_length")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RenderError(f"{path} sets no whole-number dtmf_length")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: render the flow to a file or stdout; exit 2 with one line on a bad argument."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lambda-arn", help="ARN of the assign_id Lambda function")
    parser.add_argument("--queue-arn", help="ARN of the queue that callers go to")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--dtmf-length", type=int, help="digits in a code (the plugin's dtmf_length)")
    length.add_argument("--config", type=Path, help="the plugin's settings file, to read dtmf_length from")
    parser.add_argument("--flow", type=Path, default=FLOW, help="the flow to render (default: %(default)s)")
    parser.add_argument("-o", "--output", type=Path, help="where to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        dtmf_length = args.dtmf_length
        if args.config is not None:
            dtmf_length = dtmf_length_from_config(args.config)
        rendered = render(load_flow(args.flow), lambda_arn=args.lambda_arn, queue_arn=args.queue_arn,
                          dtmf_length=dtmf_length)
    except (RenderError, OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        print(f"render_flow: {error}", file=sys.stderr)
        return 2
    text = json.dumps(rendered, indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    left = placeholders_left(rendered)
    if left:
        print(f"render_flow: still placeholders in {', '.join(left)}: pass --lambda-arn and --queue-arn, "
              "or pick the resources in the designer", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
