#!/usr/bin/env python3
"""Operator commands for a deployed Crossdesk stack (run by `make secrets`, `make outputs`,
`make email-activate` and `make teardown`; see README, "Deploying to AWS").

    stack.py outputs                 the stack's outputs (webhook URLs, ids, names)
    stack.py secrets [--file F]      fill the channel secret from F (a JSON object) and/or the
                                     CROSSDESK_* variables below; prints key names, never values
    stack.py email-activate          make the stack's SES receipt rule set the active one
    stack.py before-delete           deactivate that rule set (SES cannot delete an active one)

The stack name and region come from --stack/--region, else STACK/AWS_REGION, else the
`sam deploy --guided` answers saved in infra/samconfig.toml. Credentials: the usual AWS chain.
Needs boto3 (installed with the SAM CLI by infra/ensure-deploy-tools).
"""

import argparse
import json
import os
import re
import sys

# The secret's keys and the variables `make secrets` reads them from (the same names the
# functions accept for development, shared/aws/src/secrets.rs).
KEYS = [
    ("facebook_app_secret", "CROSSDESK_FACEBOOK_APP_SECRET"),
    ("facebook_verify_token", "CROSSDESK_FACEBOOK_VERIFY_TOKEN"),
    ("facebook_page_token", "CROSSDESK_FACEBOOK_PAGE_TOKEN"),
    ("twitter_consumer_key", "CROSSDESK_TWITTER_CONSUMER_KEY"),
    ("twitter_consumer_secret", "CROSSDESK_TWITTER_CONSUMER_SECRET"),
    ("twitter_access_token", "CROSSDESK_TWITTER_ACCESS_TOKEN"),
    ("twitter_access_secret", "CROSSDESK_TWITTER_ACCESS_SECRET"),
    ("chat_secret", "CROSSDESK_CHAT_SECRET"),
    ("chat_session_key", "CROSSDESK_CHAT_SESSION_KEY"),
    ("email_thread_key", "CROSSDESK_EMAIL_THREAD_KEY"),
    ("events_webhook_secret", "CROSSDESK_EVENTS_WEBHOOK_SECRET"),
]

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(message):
    print(f"stack.py: {message}", file=sys.stderr)
    sys.exit(1)


def samconfig():
    """`default.deploy.parameters` of infra/samconfig.toml, if there is one."""
    path = os.path.join(HERE, "samconfig.toml")
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        text = f.read()
    try:
        import tomllib

        return tomllib.loads(text.decode()).get("default", {}).get("deploy", {}).get("parameters", {})
    except ImportError:  # Python < 3.11: the two keys needed, read by hand
        found = {}
        for key in ("stack_name", "region"):
            m = re.search(rf'^\s*{key}\s*=\s*"([^"]*)"', text.decode(), re.M)
            if m:
                found[key] = m.group(1)
        return found


class Stack:
    def __init__(self, name, region):
        try:
            import boto3
        except ImportError:
            fail("boto3 is missing: run `make deploy-tools` (or use .venv/bin/python)")
        self.session = boto3.session.Session(region_name=region)
        self.name = name
        cfn = self.session.client("cloudformation")
        try:
            self.description = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except Exception as e:  # noqa: BLE001 - reported, with what to check
            fail(f"stack {name!r} not found in {self.session.region_name}: {e}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in self.description.get("Outputs", [])}
        self.parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in self.description.get("Parameters", [])}
        self._cfn = cfn

    def client(self, service):
        return self.session.client(service)

    def physical_ids(self, resource_type):
        pages = self._cfn.get_paginator("list_stack_resources").paginate(StackName=self.name)
        return [
            r["PhysicalResourceId"]
            for page in pages
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == resource_type and r.get("PhysicalResourceId")
        ]


def cmd_outputs(stack, _args):
    width = max((len(k) for k in stack.outputs), default=0)
    for key in sorted(stack.outputs):
        print(f"{key:<{width}}  {stack.outputs[key]}")


def cmd_secrets(stack, args):
    updates = {}
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                given = json.load(f)
        except (OSError, ValueError) as e:
            fail(f"{args.file}: {e}")
        if not isinstance(given, dict):
            fail(f"{args.file}: expected a JSON object with keys {', '.join(k for k, _ in KEYS)}")
        known = {k for k, _ in KEYS}
        unknown = sorted(set(given) - known)
        if unknown:
            fail(f"{args.file}: unknown keys {unknown} (known: {sorted(known)})")
        for key, value in given.items():
            if value is not None and not isinstance(value, str):
                fail(f"{args.file}: {key} is not a string")
            if value:
                updates[key] = value
    for key, var in KEYS:
        value = os.environ.get(var, "").strip()
        if value:
            updates[key] = value
    if not updates:
        fail(
            "nothing to store: give SECRETS_FILE=path/to/secrets.json or set some of "
            + ", ".join(var for _, var in KEYS)
        )

    arn = stack.outputs.get("SecretArn") or fail("the stack has no SecretArn output")
    sm = stack.client("secretsmanager")
    current = {}
    try:
        text = sm.get_secret_value(SecretId=arn).get("SecretString") or "{}"
        current = json.loads(text)
        if not isinstance(current, dict):
            current = {}
    except sm.exceptions.ResourceNotFoundException:
        current = {}
    merged = {**current, **updates}
    answer = sm.put_secret_value(SecretId=arn, SecretString=json.dumps(merged))
    print(f"stored in {arn}: {', '.join(sorted(updates))}")
    empty = [k for k, _ in KEYS if not merged.get(k)]
    if empty:
        print(f"still empty (those channels answer 503 / cannot send): {', '.join(empty)}")

    if args.no_restart:
        print("the functions read the secret at their next cold start")
        return
    # Functions read the secret once per cold start: a configuration change retires their
    # running instances, so the new values apply from the next request on.
    lam = stack.client("lambda")
    for name in stack.physical_ids("AWS::Lambda::Function"):
        config = lam.get_function_configuration(FunctionName=name)
        variables = dict(config.get("Environment", {}).get("Variables", {}))
        variables["CROSSDESK_SECRET_VERSION"] = answer["VersionId"]
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    print("functions restarted: the new values apply from the next request")


def rule_set(stack):
    name = stack.outputs.get("ReceiptRuleSetName")
    if not name:
        fail("the stack receives no email (EnableEmailReceiving=false)")
    own = not stack.parameters.get("ExistingReceiptRuleSetName")
    return name, own


def cmd_email_activate(stack, args):
    name, own = rule_set(stack)
    ses = stack.client("ses")
    active = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    if active == name:
        print(f"{name} is already the active receipt rule set")
        return
    if active and not args.force:
        fail(
            f"{active} is the active rule set of this account and region; activating {name} would "
            f"switch its rules off. Redeploy with ExistingReceiptRuleSetName={active} to add "
            f"Crossdesk's rule to it, or pass --force (make email-activate FORCE=1)."
        )
    ses.set_active_receipt_rule_set(RuleSetName=name)
    print(f"{name} is now the active receipt rule set{' (it was ' + active + ')' if active else ''}")
    if not own:
        print("note: it is not a rule set this stack created")


def cmd_before_delete(stack, _args):
    if not stack.outputs.get("ReceiptRuleSetName"):
        return
    name, own = rule_set(stack)
    if not own:
        return  # the stack's rule is removed from the company's rule set; the set stays active
    ses = stack.client("ses")
    active = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    if active == name:
        ses.set_active_receipt_rule_set()  # no name: no active rule set
        print(f"deactivated the receipt rule set {name}: mail to the support domain is no longer received")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default=os.environ.get("STACK") or None)
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("outputs")
    secrets = sub.add_parser("secrets")
    secrets.add_argument("--file", default=os.environ.get("SECRETS_FILE") or None)
    secrets.add_argument("--no-restart", action="store_true")
    activate = sub.add_parser("email-activate")
    activate.add_argument("--force", action="store_true")
    sub.add_parser("before-delete")
    args = parser.parse_args()

    saved = samconfig()
    name = args.stack or saved.get("stack_name") or "crossdesk"
    region = args.region or saved.get("region") or os.environ.get("AWS_DEFAULT_REGION")
    stack = Stack(name, region)
    {
        "outputs": cmd_outputs,
        "secrets": cmd_secrets,
        "email-activate": cmd_email_activate,
        "before-delete": cmd_before_delete,
    }[args.command](stack, args)


if __name__ == "__main__":
    main()
