//! Evaluation of an already-parsed 10-statement policy with conditions and variables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cognate_policy::{Context, Policy, PolicySet, PolicyUse, PrincipalInfo, Request, evaluate};
use criterion::{Criterion, criterion_group, criterion_main};

const POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::home",
     "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/*", "${aws:username}"]}}},
    {"Sid": "OwnObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": "arn:aws:s3:::home/${aws:username}/*"},
    {"Sid": "Region", "Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}},
    {"Sid": "Office", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}, "Bool": {"aws:ViaAWSService": "false"}}},
    {"Sid": "Mfa", "Effect": "Deny", "Action": "iam:*", "Resource": "*",
     "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
    {"Sid": "Window", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*",
     "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}, "DateLessThan": {"aws:CurrentTime": "2099-12-31T23:59:59Z"}}},
    {"Sid": "Tags", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["Project", "Owner"]}}},
    {"Sid": "Dept", "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:*:111122223333:table/${aws:PrincipalTag/team}-*"},
    {"Sid": "Numbers", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::logs",
     "Condition": {"NumericLessThanEquals": {"s3:max-keys": "100"}}},
    {"Sid": "Arn", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
     "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/*"}}}
  ]
}"#;

fn bench(c: &mut Criterion) {
    let policy = Policy::parse(POLICY, PolicyUse::Identity).unwrap();
    let policies = [&policy];
    let set = PolicySet {
        identity: &policies,
        ..PolicySet::default()
    };
    let principal = PrincipalInfo::from_arn("arn:aws:iam::111122223333:user/alice");
    let mut context = Context::new();
    context.set("aws:username", "alice");
    context.set("aws:RequestedRegion", "us-east-1");
    context.set("aws:SourceIp", "203.0.113.9");
    context.set("aws:ViaAWSService", "false");
    context.set("aws:MultiFactorAuthPresent", "true");
    context.set("aws:CurrentTime", "2026-11-23T00:00:00Z");
    context.set("aws:PrincipalArn", "arn:aws:iam::111122223333:user/alice");
    let allow = Request {
        principal: &principal,
        action: "s3:GetObject",
        resource: "arn:aws:s3:::home/alice/notes.txt",
        context: &context,
    };
    let deny = Request {
        principal: &principal,
        action: "s3:GetObject",
        resource: "arn:aws:s3:::home/bob/notes.txt",
        context: &context,
    };
    assert_eq!(evaluate(&set, &allow).decision.as_str(), "allowed");
    assert_eq!(evaluate(&set, &deny).decision.as_str(), "implicitDeny");
    c.bench_function(
        "evaluate 10-statement policy: allowed (variable resource)",
        |b| b.iter(|| evaluate(&set, &allow)),
    );
    c.bench_function("evaluate 10-statement policy: implicit deny", |b| {
        b.iter(|| evaluate(&set, &deny))
    });
    let plain = Request {
        principal: &principal,
        action: "ec2:DescribeInstances",
        resource: "*",
        context: &context,
    };
    assert_eq!(evaluate(&set, &plain).decision.as_str(), "allowed");
    c.bench_function(
        "evaluate 10-statement policy: allowed (date conditions)",
        |b| b.iter(|| evaluate(&set, &plain)),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
