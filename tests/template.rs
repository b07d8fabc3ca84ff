//! The deployment template (`infra/template.yaml`) against the code it deploys: one function per
//! crate under `functions/`, the table schema the store relies on, queues that never lose a
//! message, every setting the code reads, no secret in plain sight, the right routes behind the
//! right authorizer, and every channel with its function, template block and sample events.
//!
//! No AWS needed: the template is read as YAML (`cfn-lint` checks it against CloudFormation's
//! and SAM's schemas in `make test`, step "template lint").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

// ---- reading the template ----

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let full = root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Turns the short-form intrinsics (`!Ref X`, `!GetAtt A.B`, `!Sub s`, `!If [...]`, …) into
/// their long form (`{Ref: X}`, `{Fn::GetAtt: [A, B]}`, …), so the checks read one shape.
fn long_form(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            let (key, inner) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                "GetAtt" => {
                    let inner = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((resource, attribute)) => Value::Sequence(vec![
                                Value::String(resource.into()),
                                Value::String(attribute.into()),
                            ]),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), inner)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut map = Mapping::new();
            map.insert(Value::String(key), inner);
            Value::Mapping(map)
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(long_form).collect()),
        Value::Mapping(map) => {
            Value::Mapping(map.into_iter().map(|(k, v)| (k, long_form(v))).collect())
        }
        other => other,
    }
}

struct Template(Value);

impl Template {
    fn load() -> Template {
        let text = read("infra/template.yaml");
        let value: Value = serde_yaml::from_str(&text).expect("infra/template.yaml is YAML");
        Template(long_form(value))
    }

    fn resources(&self) -> &Mapping {
        self.0["Resources"].as_mapping().expect("Resources")
    }

    fn resource(&self, name: &str) -> &Value {
        let r = &self.0["Resources"][name];
        assert!(!r.is_null(), "no resource {name}");
        r
    }

    fn of_type(&self, ty: &str) -> Vec<(String, &Value)> {
        self.resources()
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(ty))
            .map(|(k, r)| (k.as_str().unwrap_or_default().to_string(), r))
            .collect()
    }

    /// Every function with the `Globals.Function` settings it inherits (environment
    /// variables merged, the function's own values winning).
    fn functions(&self) -> Vec<Function> {
        let globals = self.0["Globals"]["Function"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        self.of_type("AWS::Serverless::Function")
            .into_iter()
            .map(|(name, resource)| {
                let own = resource["Properties"]
                    .as_mapping()
                    .cloned()
                    .unwrap_or_default();
                let mut props = globals.clone();
                for (k, v) in own {
                    props.insert(k, v);
                }
                let mut env = BTreeMap::new();
                for source in [&self.0["Globals"]["Function"], &resource["Properties"]] {
                    if let Some(vars) = source["Environment"]["Variables"].as_mapping() {
                        for (k, v) in vars {
                            env.insert(k.as_str().unwrap_or_default().to_string(), v.clone());
                        }
                    }
                }
                Function {
                    name,
                    props: Value::Mapping(props),
                    metadata: resource["Metadata"].clone(),
                    env,
                }
            })
            .collect()
    }

    fn function(&self, name: &str) -> Function {
        self.functions()
            .into_iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no function {name}"))
    }
}

struct Function {
    name: String,
    props: Value,
    metadata: Value,
    env: BTreeMap<String, Value>,
}

impl Function {
    /// The crate the function is built from (`../functions/<crate>`).
    fn crate_name(&self) -> String {
        let uri = self.props["CodeUri"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: CodeUri is not a path", self.name));
        uri.strip_prefix("../functions/")
            .unwrap_or_else(|| panic!("{}: CodeUri {uri} is not ../functions/<crate>", self.name))
            .trim_end_matches('/')
            .to_string()
    }

    fn timeout(&self) -> u64 {
        self.props["Timeout"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: no Timeout", self.name))
    }

    fn events(&self) -> Vec<(String, &Value)> {
        self.props["Events"]
            .as_mapping()
            .map(|events| {
                events
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The resource a `{Ref: X}` or `{Fn::GetAtt: [X, attr]}` names.
fn target(value: &Value) -> Option<&str> {
    value["Ref"]
        .as_str()
        .or_else(|| value["Fn::GetAtt"][0].as_str())
}

fn get_att(value: &Value) -> Option<(&str, &str)> {
    Some((
        value["Fn::GetAtt"][0].as_str()?,
        value["Fn::GetAtt"][1].as_str()?,
    ))
}

// ---- reading the code ----

/// The crates under `functions/`.
fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every `.rs` file under `dir`, recursively, skipping integration test folders.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "tests" || n == "target")
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `"CROSSDESK_…"` string literals in the code the functions run (the local stack in `src/`
/// and the embedded adapters are not deployed).
fn settings_read_by_deployed_code() -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in [
        "shared/core",
        "shared/channels",
        "shared/http",
        "shared/aws",
        "shared/lambda",
        "functions",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, _) in text.match_indices("\"CROSSDESK_") {
            let rest = &text[i + 1..];
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            if rest[end..].starts_with('"') {
                names.insert(rest[..end].to_string());
            }
        }
    }
    names
}

/// The secret's JSON keys and the development variables that stand in for them, as the `KEYS`
/// table of `shared/aws/src/secrets.rs` pairs them: `("facebook_app_secret", "CROSSDESK_…")`.
fn secret_keys() -> Vec<(String, String)> {
    let text = read("shared/aws/src/secrets.rs");
    let start = text.find("KEYS: &[").expect("secrets.rs has a KEYS table");
    let table = &text[start..];
    let table = &table[..table.find("];").expect("the KEYS table ends")];
    let literals: Vec<&str> = table.split('"').skip(1).step_by(2).collect();
    literals
        .chunks(2)
        .map(|pair| {
            assert!(
                pair.len() == 2 && pair[1].starts_with("CROSSDESK_"),
                "KEYS pairs a key with a CROSSDESK_ variable: {pair:?}"
            );
            (pair[0].to_string(), pair[1].to_string())
        })
        .collect()
}

/// A name that reads like a credential (the id or ARN of a secret is not one).
fn secret_like(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.ends_with("ID") || upper.ends_with("ARN") {
        return false;
    }
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "PRIVATE",
    ]
    .iter()
    .any(|word| upper.contains(word))
        || upper.ends_with("KEY")
}

/// The channel modules of `shared/channels` (`impl Channel for …`) and the names they answer.
fn channel_names() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root().join("shared/channels/src"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let Some(start) = text.find("impl Channel for ") else {
            continue;
        };
        let body = &text[start..];
        let after_name = body
            .find("fn name(")
            .map(|i| &body[i..])
            .unwrap_or_else(|| panic!("{}: Channel impl without fn name", file.display()));
        let quoted = after_name
            .split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("{}: fn name returns no literal", file.display()));
        names.insert(quoted.to_string());
    }
    names
}

// ---- the checks ----

#[test]
fn every_function_crate_has_exactly_one_function_and_every_function_a_crate() {
    let t = Template::load();
    let crates = function_crates();
    assert!(!crates.is_empty(), "no crates under functions/");
    let mut built: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in t.functions() {
        built
            .entry(f.crate_name())
            .or_default()
            .push(f.name.clone());
        assert_eq!(f.metadata["BuildMethod"], "rust-cargolambda", "{}", f.name);
        let binary = f.metadata["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(binary, f.crate_name(), "{}: Binary", f.name);
        let manifest = read(format!("functions/{}/Cargo.toml", f.crate_name()));
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{}: functions/{}/Cargo.toml has no binary {binary}",
            f.name,
            f.crate_name()
        );
        assert_eq!(f.props["Runtime"], "provided.al2023", "{}", f.name);
        assert_eq!(f.props["Handler"], "bootstrap", "{}", f.name);
        assert_eq!(
            f.props["Architectures"],
            Value::Sequence(vec!["arm64".into()]),
            "{}",
            f.name
        );
    }
    for (krate, functions) in &built {
        assert!(
            crates.contains(krate),
            "{functions:?} point at functions/{krate}, which is no crate"
        );
        assert_eq!(
            functions.len(),
            1,
            "functions/{krate} is deployed by {functions:?}"
        );
    }
    for krate in &crates {
        assert!(
            built.contains_key(krate),
            "functions/{krate} has no function in the template"
        );
    }
}

#[test]
fn table_has_the_schema_the_store_relies_on() {
    let t = Template::load();
    let tables = t.of_type("AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "one table");
    let (name, table) = &tables[0];
    let p = &table["Properties"];

    // The names in shared/aws/src/table.rs.
    let code = read("shared/aws/src/table.rs");
    let constant = |name: &str| -> String {
        let line = code
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("pub const {name}: &str = "))
            })
            .unwrap_or_else(|| panic!("table.rs has no {name}"));
        line.split('"').nth(1).unwrap_or_default().to_string()
    };
    let (pk, sk, index, gsi_pk, gsi_sk) = (
        constant("PK"),
        constant("SK"),
        constant("INBOX_INDEX"),
        constant("GSI1_PK"),
        constant("GSI1_SK"),
    );
    assert_eq!(
        (
            pk.as_str(),
            sk.as_str(),
            index.as_str(),
            gsi_pk.as_str(),
            gsi_sk.as_str()
        ),
        ("pk", "sk", "inbox", "gsi1pk", "gsi1sk")
    );

    let keys = |schema: &Value| -> Vec<(String, String)> {
        schema
            .as_sequence()
            .expect("KeySchema")
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap_or_default().to_string(),
                    k["KeyType"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| {
        vec![
            (a.to_string(), "HASH".to_string()),
            (b.to_string(), "RANGE".to_string()),
        ]
    };
    assert_eq!(keys(&p["KeySchema"]), pair(&pk, &sk), "{name} keys");
    let gsis = p["GlobalSecondaryIndexes"].as_sequence().expect("GSIs");
    assert_eq!(gsis.len(), 1, "one GSI");
    assert_eq!(gsis[0]["IndexName"], Value::String(index));
    assert_eq!(keys(&gsis[0]["KeySchema"]), pair(&gsi_pk, &gsi_sk));
    assert_eq!(gsis[0]["Projection"]["ProjectionType"], "ALL");
    let attributes: BTreeMap<String, String> = p["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap_or_default().to_string(),
                a["AttributeType"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [pk, sk, gsi_pk, gsi_sk]
        .into_iter()
        .map(|a| (a, "S".to_string()))
        .collect();
    assert_eq!(attributes, expected);

    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(p["DeletionProtectionEnabled"], true);
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
}

#[test]
fn every_queue_consumer_reports_partial_failures_over_a_queue_with_a_watched_dead_letter_queue() {
    let t = Template::load();
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    let alarmed_queue = |queue: &str| {
        alarms.iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["Namespace"] == "AWS/SQS"
                && p["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && p["Threshold"].as_f64() == Some(0.0)
                && p["ComparisonOperator"] == "GreaterThanThreshold"
                && p["AlarmActions"]
                    .as_sequence()
                    .is_some_and(|a| !a.is_empty())
                && p["Dimensions"].as_sequence().is_some_and(|dims| {
                    dims.iter().any(|d| {
                        d["Name"] == "QueueName"
                            && get_att(&d["Value"]) == Some((queue, "QueueName"))
                    })
                })
        })
    };

    let mut consumers = 0;
    for f in t.functions() {
        for (event, e) in f.events() {
            if e["Type"] != "SQS" {
                continue;
            }
            consumers += 1;
            let what = format!("{}.{event}", f.name);
            let p = &e["Properties"];
            assert!(
                p["FunctionResponseTypes"]
                    .as_sequence()
                    .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
                "{what}: no ReportBatchItemFailures"
            );
            let batch = p["BatchSize"].as_u64().unwrap_or(10);
            assert!(
                (1..=10).contains(&batch),
                "{what}: BatchSize {batch} (FIFO allows 10)"
            );
            let (queue, attr) = get_att(&p["Queue"])
                .unwrap_or_else(|| panic!("{what}: Queue is not !GetAtt X.Arn"));
            assert_eq!(attr, "Arn");
            let q = &t.resource(queue)["Properties"];
            // The outgoing events queue alone is a standard queue (event ids and the sender's
            // ledger make duplicates harmless), given more receives than the sender's own 12
            // rounds, so the sender gives up first and keeps the event for replay.
            let fifo = queue != "EventsQueue";
            if fifo {
                assert_eq!(q["FifoQueue"], true, "{queue}: FIFO");
                assert_eq!(
                    q["ContentBasedDeduplication"], false,
                    "{queue}: the code sets MessageDeduplicationId"
                );
            } else {
                assert!(q["FifoQueue"].is_null(), "{queue}: a standard queue");
            }
            let visibility = q["VisibilityTimeout"].as_u64().unwrap_or(30);
            assert!(
                visibility >= 6 * f.timeout(),
                "{queue}: visibility timeout {visibility} s < 6 x {} s of {}",
                f.timeout(),
                f.name
            );
            let redrive = &q["RedrivePolicy"];
            assert_eq!(
                redrive["maxReceiveCount"].as_u64(),
                Some(if fifo { 5 } else { 20 }),
                "{queue}: maxReceiveCount"
            );
            let (dlq, attr) = get_att(&redrive["deadLetterTargetArn"])
                .unwrap_or_else(|| panic!("{queue}: no dead-letter queue"));
            assert_eq!(attr, "Arn");
            let d = &t.resource(dlq)["Properties"];
            if fifo {
                assert_eq!(d["FifoQueue"], true, "{dlq}: a FIFO queue's DLQ is FIFO");
            } else {
                assert!(d["FifoQueue"].is_null(), "{dlq}: a standard queue's DLQ");
            }
            assert_eq!(
                d["MessageRetentionPeriod"].as_u64(),
                Some(14 * 24 * 3600),
                "{dlq}: 14 days"
            );
            assert!(alarmed_queue(dlq), "{dlq}: no alarm on depth > 0");
        }
    }
    assert_eq!(
        consumers, 3,
        "the ticket writer, the reply sender and the event sender"
    );

    // The email ingest is invoked asynchronously: what fails there lands in a queue too.
    let email = t.function("IngestEmailFunction");
    let dlq = target(&email.props["DeadLetterQueue"]["TargetArn"])
        .expect("IngestEmailFunction: DeadLetterQueue");
    assert!(alarmed_queue(dlq), "{dlq}: no alarm on depth > 0");
}

#[test]
fn alarms_go_to_a_topic_with_an_optional_email_subscription() {
    let t = Template::load();
    let topics = t.of_type("AWS::SNS::Topic");
    assert_eq!(topics.len(), 1);
    let topic = topics[0].0.as_str();
    for (name, alarm) in t.of_type("AWS::CloudWatch::Alarm") {
        let actions = alarm["Properties"]["AlarmActions"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        assert!(
            actions.iter().any(|a| target(a) == Some(topic)),
            "{name}: not sent to {topic}"
        );
    }
    let subs = t.of_type("AWS::SNS::Subscription");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].1["Properties"]["Protocol"], "email");
    assert!(
        subs[0].1["Condition"].is_string(),
        "the subscription is optional"
    );
    assert_eq!(t.0["Parameters"]["AlarmEmail"]["Default"], "");
}

#[test]
fn channel_health_runs_every_15_minutes_and_its_failing_checks_raise_an_alarm() {
    let t = Template::load();
    let f = t
        .functions()
        .into_iter()
        .find(|f| f.crate_name() == "channel-health")
        .expect("a function for functions/channel-health");
    let schedules: Vec<&Value> = f
        .events()
        .into_iter()
        .filter(|(_, e)| e["Type"] == "Schedule")
        .map(|(_, e)| &e["Properties"]["Schedule"])
        .collect();
    assert_eq!(schedules, [&Value::from("rate(15 minutes)")], "{}", f.name);

    // The alarm watches the metric the function emits (EMF, shared/lambda/src/health.rs).
    let code = read("shared/lambda/src/health.rs");
    let metric = code
        .split("pub const CHECK_FAILURES: &str = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("CHECK_FAILURES in shared/lambda/src/health.rs");
    let namespace = read("shared/lambda/src/metrics.rs")
        .split("pub const NAMESPACE: &str = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next().map(str::to_string))
        .expect("NAMESPACE in shared/lambda/src/metrics.rs");
    let alarms: Vec<(String, &Value)> = t
        .of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["MetricName"] == metric)
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm on {metric}");
    let p = &alarms[0].1["Properties"];
    assert_eq!(p["Namespace"], Value::from(namespace));
    assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(p["Threshold"], Value::from(0));
    assert!(
        p["Period"].as_u64().unwrap_or_default() >= 15 * 60,
        "the period spans at least one run"
    );
}

#[test]
fn every_setting_the_deployed_code_reads_is_set_and_no_secret_is() {
    let t = Template::load();
    let functions = t.functions();
    let set: BTreeSet<&str> = functions
        .iter()
        .flat_map(|f| f.env.keys().map(String::as_str))
        .collect();

    let listed = [
        "CROSSDESK_TABLE_NAME",
        "CROSSDESK_INBOUND_QUEUE_URL",
        "CROSSDESK_OUTBOUND_QUEUE_URL",
        "CROSSDESK_BUCKET",
        "CROSSDESK_SECRET_ID",
        "CROSSDESK_MAIL_PREFIX",
        "CROSSDESK_EMAIL_FROM",
        "CROSSDESK_EMAIL_FROM_NAME",
        "CROSSDESK_FACEBOOK_GRAPH_URL",
        "CROSSDESK_TWITTER_API_URL",
        "CROSSDESK_FACEBOOK_HUMAN_AGENT",
        "CROSSDESK_CHAT_CALLBACK_URL",
        "RUST_LOG",
    ];
    let read = settings_read_by_deployed_code();
    let secrets = secret_keys();
    assert!(
        secrets.len() >= 8,
        "secrets.rs lists the channel secrets: {secrets:?}"
    );
    let secret_vars: BTreeSet<&str> = secrets.iter().map(|(_, v)| v.as_str()).collect();
    let needed: BTreeSet<&str> = listed
        .iter()
        .copied()
        .chain(read.iter().map(String::as_str))
        .filter(|name| !secret_vars.contains(name) && !secret_like(name))
        .collect();
    let missing: Vec<_> = needed.difference(&set).collect();
    assert!(
        missing.is_empty(),
        "read by the code but set on no function: {missing:?}"
    );

    // What every function needs to start (crossdesk_aws::AwsConfig, the secret, the logs).
    for f in &functions {
        for name in [
            "CROSSDESK_TABLE_NAME",
            "CROSSDESK_INBOUND_QUEUE_URL",
            "CROSSDESK_OUTBOUND_QUEUE_URL",
            "CROSSDESK_BUCKET",
            "CROSSDESK_SECRET_ID",
            "RUST_LOG",
        ] {
            assert!(f.env.contains_key(name), "{}: {name} not set", f.name);
        }
        assert_eq!(target(&f.env["CROSSDESK_SECRET_ID"]), Some("ChannelSecret"));
    }
    assert_eq!(
        t.resource("ChannelSecret")["Type"],
        "AWS::SecretsManager::Secret"
    );

    // No secret in an environment: not by name, not as a literal, not from a parameter.
    let parameters = t.0["Parameters"].as_mapping().cloned().unwrap_or_default();
    for (name, _) in &parameters {
        let name = name.as_str().unwrap_or_default();
        assert!(
            !secret_like(name),
            "parameter {name} looks like a secret: secrets go in the secret"
        );
    }
    for f in &functions {
        for (name, value) in &f.env {
            assert!(
                !secret_like(name) && !secret_vars.contains(name.as_str()),
                "{}: {name} in the environment",
                f.name
            );
            match value {
                Value::String(s) => assert!(
                    s.len() <= 16 && !s.contains("resolve:"),
                    "{}: {name} = {s:?} is not a plain setting",
                    f.name
                ),
                Value::Bool(_) | Value::Number(_) => {}
                other => {
                    let text = serde_yaml::to_string(other).unwrap_or_default();
                    assert!(
                        !text.contains("resolve:"),
                        "{}: {name} resolves a secret",
                        f.name
                    );
                    // A reference, or a condition choosing between references.
                    let named: Vec<&str> = match other["Fn::If"].as_sequence() {
                        Some(branches) => branches[1..].iter().filter_map(target).collect(),
                        None => target(other).into_iter().collect(),
                    };
                    assert!(!named.is_empty(), "{}: {name} = {text}", f.name);
                    for named in named {
                        assert!(
                            t.resources().contains_key(named) || parameters.contains_key(named),
                            "{}: {name} = {text}",
                            f.name
                        );
                    }
                }
            }
        }
    }
    // The secret is created empty: its values never live in the template.
    assert_eq!(
        t.resource("ChannelSecret")["Properties"]["SecretString"],
        "{}"
    );
    let outputs = serde_yaml::to_string(&t.0["Outputs"]).unwrap_or_default();
    assert!(!outputs.contains("resolve:"), "an output resolves a secret");

    // `make secrets` fills exactly the keys the code reads.
    let tool = read_tool();
    for (key, var) in &secrets {
        assert!(
            tool.contains(&format!("\"{key}\"")),
            "infra/stack.py does not know the key {key}"
        );
        assert!(
            tool.contains(&format!("\"{var}\"")),
            "infra/stack.py does not read {var}"
        );
    }
}

#[test]
fn the_agent_api_and_the_reply_sender_judge_reply_windows_by_one_setting() {
    // The windows the agent API shows and checks must be the ones the sender enforces.
    let t = Template::load();
    let functions = t.functions();
    let human_agent = |crate_name: &str| {
        let f = functions
            .iter()
            .find(|f| f.crate_name() == crate_name)
            .unwrap_or_else(|| panic!("no {crate_name} function"));
        target(
            f.env
                .get("CROSSDESK_FACEBOOK_HUMAN_AGENT")
                .unwrap_or_else(|| panic!("{crate_name}: CROSSDESK_FACEBOOK_HUMAN_AGENT unset")),
        )
        .map(str::to_string)
    };
    assert_eq!(
        human_agent("agent-api").as_deref(),
        Some("FacebookHumanAgent")
    );
    assert_eq!(human_agent("reply-sender"), human_agent("agent-api"));
}

fn read_tool() -> String {
    read("infra/stack.py")
}

#[test]
fn webhooks_are_public_and_every_other_route_needs_the_agent_jwt() {
    let t = Template::load();
    let api = t.resource("HttpApi");
    let auth = &api["Properties"]["Auth"];
    assert!(
        auth["DefaultAuthorizer"].is_null(),
        "no default authorizer: each agent route names its own"
    );
    let jwt = &auth["Authorizers"]["AgentJwt"]["JwtConfiguration"];
    assert!(
        !jwt["issuer"].is_null() && !jwt["audience"].is_null(),
        "AgentJwt: issuer and audience"
    );

    let mut routes: BTreeMap<(String, String), (String, Option<String>)> = BTreeMap::new();
    for f in t.functions() {
        for (event, e) in f.events() {
            if e["Type"] != "HttpApi" {
                continue;
            }
            let p = &e["Properties"];
            assert_eq!(target(&p["ApiId"]), Some("HttpApi"), "{}.{event}", f.name);
            let method = p["Method"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let path = p["Path"].as_str().unwrap_or_default().to_string();
            let authorizer = p["Auth"]["Authorizer"]
                .as_str()
                .filter(|a| *a != "NONE")
                .map(str::to_string);
            let previous =
                routes.insert((method.clone(), path.clone()), (f.crate_name(), authorizer));
            assert!(previous.is_none(), "{method} {path} twice");
        }
    }

    let webhook = |method: &str, channel: &str| {
        (
            (method.to_string(), format!("/webhooks/{channel}")),
            (format!("ingest-{channel}"), None),
        )
    };
    let agent = |method: &str, path: &str| {
        (
            (method.to_string(), path.to_string()),
            ("agent-api".to_string(), Some("AgentJwt".to_string())),
        )
    };
    // The website widget's chat API: public, each call carries a signed visitor session.
    let chat = |method: &str, path: &str| {
        (
            (method.to_string(), path.to_string()),
            ("ingest-chat".to_string(), None),
        )
    };
    // The console's and widget's static files: public, served by the agent-api function.
    let asset = |path: &str| {
        (
            ("GET".to_string(), path.to_string()),
            ("agent-api".to_string(), None),
        )
    };
    let expected: BTreeMap<_, _> = [
        webhook("GET", "facebook"),
        webhook("POST", "facebook"),
        webhook("GET", "twitter"),
        webhook("POST", "twitter"),
        webhook("POST", "chat"),
        chat("POST", "/chat/api/sessions"),
        chat("OPTIONS", "/chat/api/sessions"),
        chat("POST", "/chat/api/sessions/refresh"),
        chat("OPTIONS", "/chat/api/sessions/refresh"),
        chat("POST", "/chat/api/messages"),
        chat("GET", "/chat/api/messages"),
        chat("OPTIONS", "/chat/api/messages"),
        asset("/console"),
        asset("/console/{proxy+}"),
        asset("/widget.js"),
        asset("/demo"),
        asset("/demo/{proxy+}"),
        agent("GET", "/api/tickets"),
        agent("GET", "/api/tickets/{id}"),
        agent("PATCH", "/api/tickets/{id}"),
        agent("POST", "/api/tickets/{id}/replies"),
        agent(
            "GET",
            "/api/tickets/{id}/messages/{message_id}/attachments/{index}",
        ),
        agent("GET", "/api/events/failed"),
        agent("POST", "/api/events/{id}/replay"),
        agent("GET", "/api/channels"),
        agent("POST", "/api/tickets/{id}/notes"),
        agent("POST", "/api/tickets/{id}/handoff"),
        agent("GET", "/api/tickets/{id}/similar"),
        agent("GET", "/api/canned-responses"),
        agent("GET", "/api/tickets/{id}/canned-responses/{name}"),
        agent("GET", "/api/contacts/{id}"),
        agent("POST", "/api/contacts/{id}/merge"),
        agent("POST", "/api/contacts/{id}/unmerge"),
        agent("GET", "/api/agents/me/notifications"),
        agent("PUT", "/api/agents/me/notifications"),
    ]
    .into_iter()
    .collect();
    assert_eq!(routes, expected);
    let public = [
        "/webhooks/",
        "/chat/api/",
        "/console",
        "/widget.js",
        "/demo",
    ];
    for ((method, path), (_, authorizer)) in &routes {
        if !public.iter().any(|p| path.starts_with(p)) {
            assert!(authorizer.is_some(), "{method} {path} is public");
        }
    }

    // The agent routes are the agent router's (shared/http/src/agent.rs and workflow.rs), the
    // notification preferences' (notifications.rs), the events router's (events.rs) and the
    // channels router's (channels.rs).
    let code = read("shared/http/src/agent.rs")
        + &read("shared/http/src/workflow.rs")
        + &read("shared/http/src/notifications.rs")
        + &read("shared/http/src/events.rs")
        + &read("shared/http/src/channels.rs");
    let mut served = BTreeSet::new();
    for (start, _) in code.match_indices(".route(") {
        // The call's text up to its closing parenthesis (rustfmt may spread it over lines, the
        // path included).
        let call = &code[start + ".route(".len()..];
        if !call.trim_start().starts_with('"') {
            continue;
        }
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(call.len(), |(i, _)| i);
        let call = &call[..end];
        let path = call.split('"').nth(1).unwrap_or_default().to_string();
        for method in ["get", "post", "patch", "put", "delete"] {
            let routed = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                !call[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if routed {
                served.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    // Served only where a checker runs in-process (the local stack); in AWS the channel-health
    // function's schedule runs the checks.
    served.remove(&("POST".to_string(), "/api/channels/check".to_string()));
    let deployed: BTreeSet<_> = routes
        .keys()
        .filter(|(_, path)| path.starts_with("/api/"))
        .cloned()
        .collect();
    assert_eq!(
        deployed, served,
        "template agent routes vs shared/http/src/agent.rs"
    );
}

#[test]
fn every_channel_has_its_function_template_block_and_sample_events() {
    let t = Template::load();
    let channels = channel_names();
    assert!(channels.len() >= 4, "channels found: {channels:?}");
    let functions = t.functions();
    let rule = t.resource("ReceiptRule");
    let rule_targets: Vec<&str> = rule["Properties"]["Rule"]["Actions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|a| target(&a["LambdaAction"]["FunctionArn"]))
        .collect();
    for channel in &channels {
        let krate = format!("ingest-{channel}");
        assert!(
            root()
                .join("functions")
                .join(&krate)
                .join("Cargo.toml")
                .is_file(),
            "channel {channel}: no crate functions/{krate}"
        );
        let f = functions
            .iter()
            .find(|f| f.crate_name() == krate)
            .unwrap_or_else(|| panic!("channel {channel}: no function for functions/{krate}"));
        let triggered = f.events().iter().any(|(_, e)| e["Type"] == "HttpApi")
            || rule_targets.contains(&f.name.as_str());
        assert!(triggered, "channel {channel}: nothing invokes {}", f.name);
        let samples = std::fs::read_dir(root().join("events").join(channel))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0);
        assert!(
            samples > 0,
            "channel {channel}: no sample events in events/{channel}/"
        );
    }
}

#[test]
fn mail_lands_in_the_bucket_before_the_email_function_reads_it() {
    let t = Template::load();
    let rule = &t.resource("ReceiptRule")["Properties"]["Rule"];
    assert_eq!(rule["ScanEnabled"], true, "spam and virus verdicts");
    let actions = rule["Actions"].as_sequence().expect("Actions");
    assert_eq!(actions.len(), 2, "S3 then Lambda");
    let s3 = &actions[0]["S3Action"];
    assert_eq!(target(&s3["BucketName"]), Some("Bucket"));
    let lambda = &actions[1]["LambdaAction"];
    assert_eq!(target(&lambda["FunctionArn"]), Some("IngestEmailFunction"));
    assert_eq!(lambda["InvocationType"], "Event");
    let email = t.function("IngestEmailFunction");
    assert_eq!(s3["ObjectKeyPrefix"], email.env["CROSSDESK_MAIL_PREFIX"]);
    assert_eq!(s3["ObjectKeyPrefix"], "mail/");

    let bucket = t.resource("Bucket");
    let p = &bucket["Properties"];
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    assert!(!p["BucketEncryption"]["ServerSideEncryptionConfiguration"].is_null());
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(p["PublicAccessBlockConfiguration"][flag], true, "{flag}");
    }
    let rules = p["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("lifecycle rules");
    for prefix in ["mail/", "queue/"] {
        assert!(
            rules.iter().any(|r| r["Prefix"] == prefix
                && r["Status"] == "Enabled"
                && !r["ExpirationInDays"].is_null()),
            "no expiry for {prefix}"
        );
    }
    let statements = t.resource("BucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let ses = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "ses.amazonaws.com")
        .expect("a statement letting SES store mail");
    assert_eq!(ses["Action"], "s3:PutObject");
    assert!(
        !ses["Condition"]["StringEquals"]["aws:SourceAccount"].is_null(),
        "aws:SourceAccount"
    );
}

#[test]
fn every_function_logs_to_a_group_with_retention_and_its_own_statements_name_their_resources() {
    let t = Template::load();
    for f in t.functions() {
        let group = target(&f.props["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{}: LoggingConfig.LogGroup", f.name));
        let g = t.resource(group);
        assert_eq!(g["Type"], "AWS::Logs::LogGroup");
        assert!(
            !g["Properties"]["RetentionInDays"].is_null(),
            "{group}: retention"
        );
        assert_eq!(f.props["LoggingConfig"]["LogFormat"], "JSON", "{}", f.name);

        let policies = f.props["Policies"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        assert!(!policies.is_empty(), "{}: no policies", f.name);
        let dynamo = policies
            .iter()
            .any(|p| !p["DynamoDBCrudPolicy"].is_null() || !p["DynamoDBReadPolicy"].is_null());
        let uses_table = [
            "ticket-writer",
            "agent-api",
            "reply-sender",
            "channel-health",
            "event-sender",
            "social-monitor",
            "sla-watch",
            // GET /chat/api/messages reads the visitor's session (read-only).
            "ingest-chat",
        ]
        .contains(&f.crate_name().as_str());
        assert_eq!(dynamo, uses_table, "{}: table access", f.name);
        for policy in &policies {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let resources = match &statement["Resource"] {
                    Value::Sequence(items) => items.clone(),
                    other => vec![other.clone()],
                };
                // Actions IAM only grants on "*" (they have no resource type).
                let resourceless = ["ses:DescribeActiveReceiptRuleSet"];
                let only_resourceless = match &statement["Action"] {
                    Value::String(a) => resourceless.contains(&a.as_str()),
                    Value::Sequence(actions) => actions
                        .iter()
                        .all(|a| a.as_str().is_some_and(|a| resourceless.contains(&a))),
                    _ => false,
                };
                for r in resources {
                    assert!(
                        !r.is_null() && (r != "*" || only_resourceless),
                        "{}: statement on every resource",
                        f.name
                    );
                }
            }
        }
    }
}

#[test]
fn outputs_give_every_url_and_name_an_operator_needs() {
    let t = Template::load();
    let outputs = t.0["Outputs"].as_mapping().expect("Outputs");
    for name in [
        "ApiUrl",
        "FacebookWebhookUrl",
        "TwitterWebhookUrl",
        "ChatWebhookUrl",
        "AgentApiUrl",
        "InboundEmailAddress",
        "InboundQueueUrl",
        "OutboundQueueUrl",
        "TableName",
        "BucketName",
        "SecretArn",
        "UserPoolId",
        "UserPoolClientId",
    ] {
        assert!(outputs.contains_key(name), "output {name}");
    }
    for channel in ["facebook", "twitter", "chat"] {
        let key = format!("{}{}WebhookUrl", channel[..1].to_uppercase(), &channel[1..]);
        let value = serde_yaml::to_string(&outputs[key.as_str()]["Value"]).unwrap_or_default();
        assert!(
            value.contains(&format!("/webhooks/{channel}")),
            "{key}: {value}"
        );
    }
}

#[test]
fn the_sla_watch_runs_every_minute_with_the_desk_settings_and_may_publish_events() {
    let t = Template::load();
    let f = t
        .functions()
        .into_iter()
        .find(|f| f.crate_name() == "sla-watch")
        .expect("a function for functions/sla-watch");
    let schedules: Vec<&Value> = f
        .events()
        .into_iter()
        .filter(|(_, e)| e["Type"] == "Schedule")
        .map(|(_, e)| &e["Properties"]["Schedule"])
        .collect();
    assert_eq!(schedules, [&Value::from("rate(1 minute)")], "{}", f.name);
    assert!(f.timeout() <= 60, "a run ends before the next one starts");
    assert_eq!(
        target(&f.env["CROSSDESK_SETTINGS"]),
        Some("DeskSettings"),
        "the settings text comes from the DeskSettings parameter"
    );
    let policies = serde_yaml::to_string(&f.props["Policies"]).unwrap_or_default();
    assert!(
        policies.contains("SQSSendMessagePolicy") && policies.contains("EventsQueue"),
        "{}: may send to the events queue",
        f.name
    );
}
