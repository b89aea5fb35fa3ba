//! The `Condition` element: operators, `…IfExists`, `ForAllValues:` / `ForAnyValue:`.

use std::net::IpAddr;

use crate::Context;
use crate::pattern::Pattern;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    ForAllValues,
    ForAnyValue,
}

/// A parsed condition operator, such as `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    family: Family,
    negated: bool,
    if_exists: bool,
    set: Option<SetOp>,
}

impl Operator {
    pub(crate) fn parse(name: &str) -> Option<Operator> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetOp::ForAllValues), r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetOp::ForAnyValue), r)
        } else {
            (None, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) if b != "Null" => (true, b),
            _ => (false, rest),
        };
        use Family::*;
        let (family, negated) = match base {
            "StringEquals" => (StringEquals, false),
            "StringNotEquals" => (StringEquals, true),
            "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
            "StringLike" => (StringLike, false),
            "StringNotLike" => (StringLike, true),
            "NumericEquals" => (NumericEquals, false),
            "NumericNotEquals" => (NumericEquals, true),
            "NumericLessThan" => (NumericLessThan, false),
            "NumericLessThanEquals" => (NumericLessThanEquals, false),
            "NumericGreaterThan" => (NumericGreaterThan, false),
            "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
            "DateEquals" => (DateEquals, false),
            "DateNotEquals" => (DateEquals, true),
            "DateLessThan" => (DateLessThan, false),
            "DateLessThanEquals" => (DateLessThanEquals, false),
            "DateGreaterThan" => (DateGreaterThan, false),
            "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
            "Bool" => (Bool, false),
            "BinaryEquals" => (BinaryEquals, false),
            "IpAddress" => (IpAddress, false),
            "NotIpAddress" => (IpAddress, true),
            "ArnEquals" | "ArnLike" => (ArnLike, false),
            "ArnNotEquals" | "ArnNotLike" => (ArnLike, true),
            "Null" => (Null, false),
            _ => return None,
        };
        Some(Operator {
            family,
            negated,
            if_exists,
            set,
        })
    }
}

/// One `operator: { key: [values] }` entry.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) operator: Operator,
    /// Lower-case: condition keys are case-insensitive.
    pub(crate) key: String,
    /// The key as the policy wrote it.
    pub(crate) name: String,
    pub(crate) values: Vec<Pattern>,
}

impl Condition {
    /// Whether the condition holds; `None` when its key is absent but unknowable (see
    /// [`Context::mark_unknowable`]): the caller decides by the statement's effect.
    pub(crate) fn evaluate(&self, context: &Context) -> Option<bool> {
        let present = context.get_lower(&self.key).filter(|v| !v.is_empty());
        if present.is_none() && context.unknowable(&self.key) {
            return None;
        }
        Some(self.holds(context, present))
    }

    fn holds(&self, context: &Context, present: Option<&[String]>) -> bool {
        let op = self.operator;
        if op.family == Family::Null {
            // "true" asks for the key to be absent, "false" for it to be present.
            return self.values.iter().any(|v| {
                let want_absent = v
                    .resolve(context)
                    .is_some_and(|s| s.eq_ignore_ascii_case("true"));
                want_absent == present.is_none()
            });
        }
        let Some(actual) = present else {
            return match op.set {
                _ if op.if_exists => true,
                Some(SetOp::ForAllValues) => true,
                Some(SetOp::ForAnyValue) => false,
                None => op.negated,
            };
        };
        // Whether one context value satisfies the operator (for negated operators: matches
        // none of the policy's values).
        let satisfies = |value: &str| self.any_policy_value_matches(value, context) != op.negated;
        match op.set {
            Some(SetOp::ForAllValues) => actual.iter().all(|v| satisfies(v)),
            Some(SetOp::ForAnyValue) => actual.iter().any(|v| satisfies(v)),
            None if op.negated => actual.iter().all(|v| satisfies(v)),
            None => actual.iter().any(|v| satisfies(v)),
        }
    }

    fn any_policy_value_matches(&self, actual: &str, context: &Context) -> bool {
        use Family::*;
        self.values
            .iter()
            .any(|expected| match self.operator.family {
                StringLike => expected.matches(actual, context, false),
                ArnLike => expected.matches_arn(actual, context),
                family => {
                    let Some(expected) = expected.resolve(context) else {
                        return false;
                    };
                    let expected = expected.as_ref();
                    match family {
                        StringEquals | BinaryEquals => expected == actual,
                        StringEqualsIgnoreCase => expected.to_lowercase() == actual.to_lowercase(),
                        Bool => expected.eq_ignore_ascii_case(actual),
                        NumericEquals
                        | NumericLessThan
                        | NumericLessThanEquals
                        | NumericGreaterThan
                        | NumericGreaterThanEquals => {
                            match (actual.trim().parse::<f64>(), expected.trim().parse::<f64>()) {
                                (Ok(a), Ok(e)) => compare(family, a.partial_cmp(&e)),
                                _ => false,
                            }
                        }
                        DateEquals
                        | DateLessThan
                        | DateLessThanEquals
                        | DateGreaterThan
                        | DateGreaterThanEquals => {
                            match (parse_date(actual), parse_date(expected)) {
                                (Some(a), Some(e)) => compare(family, Some(a.cmp(&e))),
                                _ => false,
                            }
                        }
                        IpAddress => ip_in_cidr(actual, expected),
                        StringLike | ArnLike | Null => false,
                    }
                }
            })
    }
}

fn compare(family: Family, ordering: Option<std::cmp::Ordering>) -> bool {
    use Family::*;
    use std::cmp::Ordering::*;
    match (family, ordering) {
        (_, None) => false,
        (NumericEquals | DateEquals, Some(o)) => o == Equal,
        (NumericLessThan | DateLessThan, Some(o)) => o == Less,
        (NumericLessThanEquals | DateLessThanEquals, Some(o)) => o != Greater,
        (NumericGreaterThan | DateGreaterThan, Some(o)) => o == Greater,
        (NumericGreaterThanEquals | DateGreaterThanEquals, Some(o)) => o != Less,
        _ => false,
    }
}

/// A date as IAM accepts it: ISO 8601 (`2019-07-16T12:00:00Z`, or a bare date) or epoch
/// seconds. Returns nanoseconds since the epoch.
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Some(i128::from(secs) * 1_000_000_000);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    let date =
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp_nanos())
}

/// Whether `ip` lies in `cidr` (an address alone is a /32 or /128).
pub(crate) fn ip_in_cidr(ip: &str, cidr: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return false;
    };
    let (net, bits) = match cidr.trim().split_once('/') {
        Some((net, bits)) => (net, bits.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return false;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return false;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Checks an operator's values when the policy is parsed, so evaluation never meets a
/// malformed one.
pub(crate) fn validate_value(operator: &Operator, value: &str) -> Result<(), String> {
    use Family::*;
    let ok = match operator.family {
        NumericEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => value.contains("${") || value.trim().parse::<f64>().is_ok(),
        DateEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => value.contains("${") || parse_date(value).is_some(),
        IpAddress => {
            value.contains("${") || ip_in_cidr(value.split('/').next().unwrap_or(""), value)
        }
        Bool | Null => {
            value.contains("${")
                || value.eq_ignore_ascii_case("true")
                || value.eq_ignore_ascii_case("false")
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid value '{value}' for condition operator"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_parse_with_prefixes_and_suffixes() {
        let op = Operator::parse("ForAnyValue:StringNotLikeIfExists").unwrap();
        assert_eq!(
            op,
            Operator {
                family: Family::StringLike,
                negated: true,
                if_exists: true,
                set: Some(SetOp::ForAnyValue)
            }
        );
        assert!(Operator::parse("NullIfExists").is_none());
        assert!(Operator::parse("StringEqualz").is_none());
        assert_eq!(Operator::parse("Null").unwrap().family, Family::Null);
    }

    #[test]
    fn cidrs() {
        assert!(ip_in_cidr("203.0.113.5", "203.0.113.0/24"));
        assert!(!ip_in_cidr("203.0.114.5", "203.0.113.0/24"));
        assert!(ip_in_cidr("10.1.2.3", "0.0.0.0/0"));
        assert!(ip_in_cidr("2001:db8::1", "2001:db8::/32"));
        assert!(!ip_in_cidr("2001:db9::1", "2001:db8::/32"));
        assert!(!ip_in_cidr("203.0.113.5", "2001:db8::/32"));
        assert!(ip_in_cidr("192.0.2.1", "192.0.2.1"));
    }

    #[test]
    fn dates_in_both_forms() {
        assert_eq!(parse_date("1970-01-01T00:00:10Z"), Some(10_000_000_000));
        assert_eq!(parse_date("10"), Some(10_000_000_000));
        assert_eq!(parse_date("2020-01-01"), parse_date("2020-01-01T00:00:00Z"));
        assert_eq!(parse_date("yesterday"), None);
    }
}
