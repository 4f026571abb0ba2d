"""The CloudFormation template for the Lambda (``aws/template.yaml``) and the package it deploys.

``cfn-lint`` (AWS's own linter, from PyPI) checks the template against
CloudFormation's resource specification; the tests below check what it cannot
know: that the role may do nothing but write the function's own logs, that only
the one Amazon Connect instance may invoke the function, that the environment
is what ``aws/assign_id.py`` reads, and that the deployed zip needs nothing but
the one file.  Deploying it is the one check left to a real AWS account
(``aws/README.md``, "Deploy with the template").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.aws_support import AWS, SAMPLE_EVENT, load_aws_module

TEMPLATE_PATH = AWS / "template.yaml"

assign_id = load_aws_module("assign_id")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref x`` is ``{"Ref": "x"}``, ``!Sub s`` is ``{"Fn::Sub": s}``)."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_tag)

# A SafeLoader with the short tags added: it builds plain data only.
TEMPLATE: dict[str, Any] = yaml.load(TEMPLATE_PATH.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def the(kind: str) -> dict[str, Any]:
    """The properties of the template's one resource of this type."""
    [resource] = of_type(kind).values()
    return resource["Properties"]


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    """``cfn-lint <path>``: the console script installed beside this Python (the ``test`` extra)."""
    script = Path(sys.executable).parent / "cfn-lint"
    command = str(script) if script.exists() else shutil.which("cfn-lint")
    assert command, "cfn-lint is not installed: pip install -e '.[test]'"
    return subprocess.run([command, "--format", "parseable", str(path)], capture_output=True, text=True,
                          timeout=300, check=False)


# --------------------------------------------------------------------------- the linter


def test_template_passes_cfn_lint_without_a_finding():
    result = cfn_lint(TEMPLATE_PATH)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_cfn_lint_really_reads_the_template(tmp_path):
    # The same template with an unknown property and a retired runtime must fail, or the check above proves nothing.
    broken = tmp_path / "template.yaml"
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert "      Runtime: python3.13\n" in text
    broken.write_text(text.replace("      Runtime: python3.13\n", "      Runtime: python2.7\n      Bogus: 1\n"))

    result = cfn_lint(broken)

    assert result.returncode != 0
    assert "E3002" in result.stdout  # 'Bogus' was unexpected
    assert "E2533" in result.stdout  # python2.7 is deprecated


# --------------------------------------------------------------------------- least privilege


def test_the_only_iam_resource_is_the_functions_role():
    assert {r["Type"] for r in RESOURCES.values() if r["Type"].startswith("AWS::IAM::")} == {"AWS::IAM::Role"}
    function = the("AWS::Lambda::Function")
    [role_name] = of_type("AWS::IAM::Role")
    assert function["Role"] == {"Fn::GetAtt": [role_name, "Arn"]}


def test_role_is_assumed_by_lambda_only_and_has_no_managed_policies():
    role = the("AWS::IAM::Role")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    assert "ManagedPolicyArns" not in role


def test_role_may_only_write_log_lines_to_the_functions_own_log_group():
    [policy] = the("AWS::IAM::Role")["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert set(actions) <= {"logs:CreateLogStream", "logs:PutLogEvents"}, actions
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        resource = statement["Resource"]["Fn::Sub"]
        assert resource.endswith(":log-group:/aws/lambda/${FunctionName}:*"), resource
        assert "*" not in resource.removesuffix(":*")
    log_group = the("AWS::Logs::LogGroup")
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${FunctionName}"}
    assert the("AWS::Lambda::Function")["FunctionName"] == {"Ref": "FunctionName"}
    # The group exists before the function can log, so the role needs no logs:CreateLogGroup.
    assert RESOURCES["Function"]["DependsOn"] == "LogGroup"


def test_only_the_one_amazon_connect_instance_may_invoke_the_function():
    permission = the("AWS::Lambda::Permission")
    assert permission == {
        "FunctionName": {"Fn::GetAtt": ["Function", "Arn"]},
        "Action": "lambda:InvokeFunction",
        "Principal": "connect.amazonaws.com",
        "SourceArn": {"Ref": "ConnectInstanceArn"},
        "SourceAccount": {"Ref": "AWS::AccountId"},
    }


def test_function_is_associated_with_the_instance():
    association = the("AWS::Connect::IntegrationAssociation")
    assert association == {
        "InstanceId": {"Ref": "ConnectInstanceArn"},
        "IntegrationType": "LAMBDA_FUNCTION",
        "IntegrationArn": {"Fn::GetAtt": ["Function", "Arn"]},
    }


# --------------------------------------------------------------------------- the function and its settings


def environment_names_read_by_the_function() -> set[str]:
    """Every ``environ.get("NAME"`` in ``aws/assign_id.py``."""
    return set(re.findall(r'environ\.get\("([A-Z_]+)"', (AWS / "assign_id.py").read_text(encoding="utf-8")))


def test_environment_is_exactly_what_the_function_reads():
    variables = the("AWS::Lambda::Function")["Environment"]["Variables"]

    assert set(variables) == environment_names_read_by_the_function() == {
        "CALL_URL", "CALL_TOKEN", "CALL_TIMEOUT", "UNKNOWN_CODE"}
    assert variables == {"CALL_URL": {"Ref": "PluginLinkPhoneUrl"}, "CALL_TOKEN": {"Ref": "LinkPhoneToken"},
                         "CALL_TIMEOUT": {"Ref": "CallTimeout"}, "UNKNOWN_CODE": {"Ref": "UnknownCode"}}


def test_token_comes_from_a_no_echo_parameter_as_long_as_the_plugin_demands():
    token = PARAMETERS["LinkPhoneToken"]
    assert token["NoEcho"] is True
    assert token["MinLength"] >= 16  # the plugin refuses a shorter link_phone_token
    assert "Default" not in token
    assert not [o for o in TEMPLATE.get("Outputs", {}).values() if "LinkPhoneToken" in json.dumps(o)]


def test_function_runs_the_handler_in_python_and_gives_up_before_amazon_connect_does():
    function = the("AWS::Lambda::Function")
    assert re.fullmatch(r"python3\.(1[1-9])", function["Runtime"])
    module, _, name = function["Handler"].partition(".")
    assert (module, callable(getattr(assign_id, name, None))) == ("assign_id", True)
    assert function["Timeout"] < 8  # Amazon Connect waits 8 seconds at most
    assert PARAMETERS["CallTimeout"]["MaxValue"] < function["Timeout"]
    assert PARAMETERS["CallTimeout"]["MaxValue"] <= assign_id.MAX_TIMEOUT
    assert PARAMETERS["CallTimeout"]["Default"] == assign_id.DEFAULT_TIMEOUT
    assert function["Code"] == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}


def test_reserved_concurrency_is_a_parameter_that_cannot_switch_the_function_off():
    assert the("AWS::Lambda::Function")["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert PARAMETERS["ReservedConcurrency"]["MinValue"] >= 1  # 0 would throttle every call


def test_unknown_code_parameter_offers_the_functions_two_modes_defaulting_to_the_flat_map():
    parameter = PARAMETERS["UnknownCode"]
    assert tuple(parameter["AllowedValues"]) == assign_id.UNKNOWN_CODE_MODES
    assert parameter["Default"] == assign_id.UNKNOWN_CODE_FALSE


def test_alarms_watch_the_functions_errors_and_throttles():
    alarms = of_type("AWS::CloudWatch::Alarm").values()
    watched = {a["Properties"]["MetricName"]: a["Properties"] for a in alarms}
    assert set(watched) == {"Errors", "Throttles"}
    for alarm in watched.values():
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "Function"}}]
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    assert watched["Errors"]["Threshold"] == {"Ref": "ErrorAlarmThreshold"}


@pytest.mark.parametrize(("parameter", "value", "allowed"), [
    ("ConnectInstanceArn", SAMPLE_EVENT["Details"]["ContactData"]["InstanceARN"], True),
    ("ConnectInstanceArn", "arn:aws:connect:eu-central-1:111122223333:instance/*", False),
    ("ConnectInstanceArn", "arn:aws:lambda:eu-central-1:111122223333:function:x", False),
    ("PluginLinkPhoneUrl", "https://plugin.example.nl/link_phone", True),
    ("PluginLinkPhoneUrl", "http://10.0.3.7:8000/link_phone", True),
    ("PluginLinkPhoneUrl", "https://plugin.example.nl/", False),
    ("PluginLinkPhoneUrl", "https://plugin.example.nl/link_phone?x=1", False),
    ("LinkPhoneToken", "lambda-to-plugin-secret-0123456789", True),
    ("LinkPhoneToken", "with a space in it 0123456789", False),
    ("AlarmTopicArn", "", True),
    ("AlarmTopicArn", "arn:aws:sns:eu-central-1:111122223333:connect-alarms", True),
])
def test_parameter_patterns_take_what_a_deployer_gives_and_refuse_the_rest(parameter, value, allowed):
    # CloudFormation matches AllowedPattern against the whole value; these patterns mean the same in Python.
    assert bool(re.fullmatch(PARAMETERS[parameter]["AllowedPattern"], value)) is allowed


# --------------------------------------------------------------------------- the deployment package


def test_deployment_zip_of_the_one_file_runs_on_the_standard_library_alone(tmp_path):
    # As the README makes it (zip -j assign_id.zip aws/assign_id.py), imported as Lambda does,
    # with no site-packages at all (-S) and no environment (-I).
    package = tmp_path / "assign_id.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(AWS / "assign_id.py", "assign_id.py")
    program = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import assign_id; "
        "print(json.dumps(assign_id.handler({'Details': {'ContactData': {'ContactId': 'c-1'}}}, None)))"
    )

    result = subprocess.run([sys.executable, "-I", "-S", "-c", program, str(package)], capture_output=True,
                            text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"linked": "false"}
    assert zipfile.ZipFile(package).namelist() == ["assign_id.py"]
