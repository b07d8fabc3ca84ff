#!/usr/bin/env python3
"""Runs the AWS SAM transform on infra/template.yaml offline, as CloudFormation would on deploy,
and writes the resulting CloudFormation template as JSON (for cfn-lint to check the generated
roles, permissions, event source mappings and routes too).

Usage: check-transform.py TEMPLATE OUTPUT.json

Needs aws-sam-translator (requirements-dev.txt); no AWS credentials, no network. The functions'
local CodeUri folders are replaced by a placeholder S3 location, as `sam package` would.
"""

import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# A value for every parameter without a default (the rest keep their defaults).
PARAMETERS = {"EmailFrom": "support@help.example.com", "AWS::Region": "us-east-1"}

# Managed policies SAM may attach, by name (the translator asks IAM otherwise).
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in [
        ("AWSLambdaBasicExecutionRole", "service-role/"),
        ("AWSLambdaSQSQueueExecutionRole", "service-role/"),
        ("AWSXrayWriteOnlyAccess", ""),
        ("AWSXRayDaemonWriteAccess", ""),
    ]
}


class OfflinePolicies:
    """The managed policy map, without asking IAM."""

    def load(self):
        return MANAGED_POLICIES


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator's ARN partition
    with open(source, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://placeholder-bucket/{name}.zip"
    try:
        output = transform(template, dict(PARAMETERS), OfflinePolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{source}: SAM transform: {cause.message}", file=sys.stderr)
        sys.exit(1)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(output, f, indent=1, sort_keys=True)
    print(f"{source}: SAM transform OK ({len(output.get('Resources', {}))} CloudFormation resources) -> {target}")


if __name__ == "__main__":
    main()
