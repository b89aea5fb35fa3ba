//! Properties the evaluation logic must keep for every policy, not just the documented ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cognate_policy::{
    Context, Decision, Policy, PolicySet, PolicyUse, PrincipalInfo, Request, evaluate,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:*",
    "iam:CreateUser",
    "iam:*",
    "*",
    "s3:Get*",
    "ec2:?escribe*",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::bucket/${aws:username}/*",
    "arn:aws:s3:::other/*",
    "arn:aws:iam::111122223333:user/*",
];
const KEYS: &[&str] = &[
    "aws:username",
    "aws:SourceIp",
    "aws:RequestedRegion",
    "aws:TagKeys",
];
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringLike",
    "StringEqualsIfExists",
    "Null",
    "IpAddress",
    "NotIpAddress",
];
const VALUES: &[&str] = &[
    "alice",
    "bob",
    "us-east-1",
    "203.0.113.0/24",
    "true",
    "false",
    "a*",
    "Project",
];

fn statement() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::subsequence(ACTIONS, 1..3),
        any::<bool>(),
        prop::sample::subsequence(RESOURCES, 1..3),
        prop::option::of((
            prop::sample::select(OPERATORS),
            prop::sample::select(KEYS),
            prop::sample::select(VALUES),
        )),
    )
        .prop_map(
            |(allow, not_action, actions, not_resource, resources, condition)| {
                let mut s = json!({ "Effect": if allow { "Allow" } else { "Deny" } });
                s[if not_action { "NotAction" } else { "Action" }] = json!(actions);
                s[if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                }] = json!(resources);
                if let Some((op, key, value)) = condition {
                    let value = match op {
                        "Null" => {
                            if value == "true" {
                                "true"
                            } else {
                                "false"
                            }
                        }
                        "IpAddress" | "NotIpAddress" => "203.0.113.0/24",
                        _ => value,
                    };
                    s["Condition"] = json!({ op: { key: value } });
                }
                s
            },
        )
}

fn request() -> impl Strategy<Value = (String, String, Vec<(String, Vec<String>)>)> {
    (
        prop::sample::select(
            &[
                "s3:GetObject",
                "s3:PutObject",
                "iam:CreateUser",
                "ec2:DescribeInstances",
                "sqs:SendMessage",
            ][..],
        ),
        prop::sample::select(
            &[
                "arn:aws:s3:::bucket/alice/k",
                "arn:aws:s3:::bucket/bob/k",
                "arn:aws:s3:::other/x",
                "arn:aws:iam::111122223333:user/carol",
            ][..],
        ),
        prop::collection::vec(
            (
                prop::sample::select(KEYS),
                prop::collection::vec(prop::sample::select(VALUES), 1..3),
            ),
            0..4,
        ),
    )
        .prop_map(|(a, r, ctx)| {
            let ctx = ctx
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
                .collect();
            (a.to_owned(), r.to_owned(), ctx)
        })
}

fn decide(statements: &[Value], req: &(String, String, Vec<(String, Vec<String>)>)) -> Decision {
    let doc = json!({ "Version": "2012-10-17", "Statement": statements });
    let policy = Policy::parse(&doc.to_string(), PolicyUse::Identity).unwrap();
    let policies = [&policy];
    let set = PolicySet {
        identity: &policies,
        ..PolicySet::default()
    };
    let principal = PrincipalInfo::from_arn("arn:aws:iam::111122223333:user/alice");
    let mut context = Context::new();
    for (k, v) in &req.2 {
        context.insert(k, v.clone());
    }
    let request = Request {
        principal: &principal,
        action: &req.0,
        resource: &req.1,
        context: &context,
    };
    evaluate(&set, &request).decision
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn adding_a_deny_never_grants(statements in prop::collection::vec(statement(), 1..6), extra in statement(), req in request()) {
        let before = decide(&statements, &req);
        let mut deny = extra;
        deny["Effect"] = json!("Deny");
        let mut more = statements.clone();
        more.push(deny);
        let after = decide(&more, &req);
        if before != Decision::Allowed {
            prop_assert_ne!(after, Decision::Allowed);
        }
        if before == Decision::ExplicitDeny {
            prop_assert_eq!(after, Decision::ExplicitDeny);
        }
    }

    #[test]
    fn adding_an_allow_never_denies(statements in prop::collection::vec(statement(), 1..6), extra in statement(), req in request()) {
        let before = decide(&statements, &req);
        let mut allow = extra;
        allow["Effect"] = json!("Allow");
        let mut more = statements.clone();
        more.push(allow);
        let after = decide(&more, &req);
        if before == Decision::Allowed {
            prop_assert_eq!(after, Decision::Allowed);
        }
        if before == Decision::ExplicitDeny {
            prop_assert_eq!(after, Decision::ExplicitDeny);
        }
    }

    #[test]
    fn statement_order_never_matters(statements in prop::collection::vec(statement(), 1..6), req in request(), rotate in 0usize..6) {
        let before = decide(&statements, &req);
        let mut reordered = statements.clone();
        reordered.reverse();
        let n = reordered.len();
        reordered.rotate_left(rotate % n);
        prop_assert_eq!(decide(&reordered, &req), before);
    }
}
