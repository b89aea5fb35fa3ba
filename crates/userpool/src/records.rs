//! The stored shapes: a user's record (attributes, status, lockout, MFA), its sealed secrets
//! and pending codes, pool and app client settings, groups, and challenge sessions.

use crate::*;

/// A user's attributes, status and sign-out time (stored as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub(crate) username: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) status: String,
    pub(crate) enabled: bool,
    /// Tokens issued before this (unix seconds) are refused: global sign-out.
    #[serde(default)]
    pub(crate) tokens_valid_after: i64,
    /// Software-token (TOTP) MFA is enabled for sign-in.
    #[serde(default)]
    pub(crate) software_token_mfa: bool,
    #[serde(default)]
    pub(crate) preferred_mfa: bool,
    /// Consecutive failed sign-ins, and until when (unix milliseconds: a lockout of one
    /// second lasts one second, not what is left of the clock's current second) sign-in is
    /// locked.
    #[serde(default)]
    pub(crate) failed_sign_ins: u32,
    #[serde(default)]
    pub(crate) locked_until_ms: i64,
    /// A lockout stored before lockouts were kept in milliseconds (unix seconds): honoured
    /// until the record is next written.
    #[serde(default, rename = "locked_until", skip_serializing)]
    pub(crate) legacy_locked_until: i64,
    /// When the last sign-in attempt was counted: 15 quiet minutes reset the count.
    #[serde(default)]
    pub(crate) last_attempt_at: i64,
    /// Challenge sessions (and SRP secret blocks) answered or failing, until they expire:
    /// each is single use and tolerates few wrong answers.
    #[serde(default)]
    pub(crate) sessions: Vec<SessionUse>,
    /// Sessions expiring at or before this were forgotten to keep `sessions` short: refused.
    #[serde(default)]
    pub(crate) sessions_floor: i64,
}

/// Counts one (possibly failing) sign-in attempt into the record: refused during a lockout,
/// which starts after [`LOCKOUT_AFTER`] in a row and doubles from 1 s to 15 minutes; 15
/// quiet minutes start the count again.
pub(crate) fn count_failure(record: &mut UserRecord, now_ms: i64) -> Result<(), ApiError> {
    if record.locked(now_ms) {
        return Err(not_authorized("Password attempts exceeded"));
    }
    let now = now_ms.div_euclid(1000);
    if record.failed_sign_ins > 0 && now - record.last_attempt_at >= 900 {
        record.failed_sign_ins = 0;
    }
    record.failed_sign_ins = record.failed_sign_ins.saturating_add(1);
    record.last_attempt_at = now;
    if record.failed_sign_ins >= LOCKOUT_AFTER {
        let exponent = (record.failed_sign_ins - LOCKOUT_AFTER).min(10);
        record.locked_until_ms = now_ms + (1000i64 << exponent).min(900_000);
    }
    Ok(())
}

/// What a user's record remembers of one challenge session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionUse {
    pub(crate) id: String,
    pub(crate) expires_at: i64,
    #[serde(default)]
    pub(crate) failures: u32,
    #[serde(default)]
    pub(crate) used: bool,
}

impl UserRecord {
    /// Whether sign-in is locked out at `now_ms` (unix milliseconds).
    pub(crate) fn locked(&self, now_ms: i64) -> bool {
        self.locked_until_ms
            .max(self.legacy_locked_until.saturating_mul(1000))
            > now_ms
    }

    /// The state of session `id` (expiring at `expires_at`): `Err` when it was used, failed
    /// too often, or is older than what the record still remembers.
    pub(crate) fn session_open(&self, id: &str, expires_at: i64) -> Result<(), ApiError> {
        if expires_at <= self.sessions_floor {
            return Err(not_authorized(
                "Invalid session for the user, session is expired.",
            ));
        }
        match self.sessions.iter().find(|u| u.id == id) {
            Some(u) if u.used => Err(not_authorized(
                "Invalid session for the user, session can only be used once.",
            )),
            Some(u) if u.failures >= MAX_SESSION_FAILURES => Err(not_authorized(
                "Invalid session for the user, session is expired.",
            )),
            _ => Ok(()),
        }
    }

    /// Notes a use (`used`) or a wrong answer of session `id`, forgetting expired ones.
    pub(crate) fn note_session(&mut self, id: &str, expires_at: i64, used: bool, now: i64) {
        self.sessions.retain(|u| u.expires_at >= now);
        match self.sessions.iter_mut().find(|u| u.id == id) {
            Some(u) if used => u.used = true,
            Some(u) => u.failures += 1,
            None => self.sessions.push(SessionUse {
                id: id.to_owned(),
                expires_at,
                failures: u32::from(!used),
                used,
            }),
        }
        // Bounded: the oldest are forgotten, and everything as old refused.
        while self.sessions.len() > MAX_REMEMBERED_SESSIONS {
            let Some((i, oldest)) = self
                .sessions
                .iter()
                .enumerate()
                .min_by_key(|(_, u)| u.expires_at)
                .map(|(i, u)| (i, u.expires_at))
            else {
                break;
            };
            self.sessions.remove(i);
            self.sessions_floor = self.sessions_floor.max(oldest);
        }
    }
}

/// A pending confirmation code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingCode {
    pub(crate) purpose: String,
    /// Hex SHA-256 of the code.
    pub(crate) hash: String,
    pub(crate) expires_at: i64,
    pub(crate) attempts: u32,
    /// The attribute the code was sent to (`email`, `phone_number`), which confirming it
    /// verifies.
    #[serde(default)]
    pub(crate) sent_to: Option<String>,
}

/// What is sealed per user: what checks the password, and a pending code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct UserSecrets {
    /// An Argon2id hash, kept only in rows written before the verifier was the one check (and
    /// dropped when the password next changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password_hash: Option<String>,
    /// The SRP salt and verifier of the password: what password and SRP sign-in check.
    #[serde(default)]
    pub(crate) srp: Option<srp::Verifier>,
    pub(crate) code: Option<PendingCode>,
    /// A TOTP secret being set up, and the verified one.
    #[serde(default)]
    pub(crate) totp_pending: Option<Vec<u8>>,
    #[serde(default)]
    pub(crate) totp_secret: Option<Vec<u8>>,
    /// The last TOTP time step used (each code works once).
    #[serde(default)]
    pub(crate) totp_last_step: i64,
}

/// A pool's settings as stored (the parts of CreateUserPool's input that shape behaviour).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PoolConfig {
    #[serde(default)]
    pub(crate) password_policy: PasswordPolicy,
    #[serde(default)]
    pub(crate) username_attributes: Vec<String>,
    #[serde(default)]
    pub(crate) alias_attributes: Vec<String>,
    #[serde(default)]
    pub(crate) auto_verified_attributes: Vec<String>,
    #[serde(default = "default_true")]
    pub(crate) case_sensitive: bool,
    #[serde(default)]
    pub(crate) mfa_configuration: String,
    /// Whether software-token (TOTP) MFA is activated (SetUserPoolMfaConfig); unset in pools
    /// whose MFA was only ever set by CreateUserPool or UpdateUserPool, where ON and OPTIONAL
    /// mean TOTP.
    #[serde(default)]
    pub(crate) software_token_mfa: Option<bool>,
    /// Required standard attributes and the pool's custom attributes.
    #[serde(default)]
    pub(crate) schema: attributes::Schema,
    /// The rest of CreateUserPool's input, returned by DescribeUserPool.
    #[serde(default)]
    pub(crate) extra: Map<String, Value>,
}

impl PoolConfig {
    /// Whether users of this pool may (OPTIONAL) or must (ON) sign in with a TOTP code.
    pub(crate) fn totp_active(&self) -> bool {
        matches!(self.mfa_configuration.as_str(), "ON" | "OPTIONAL")
            && self.software_token_mfa.unwrap_or(true)
    }

    /// Cognito's rule for a pool's MFA settings: ON and OPTIONAL need a factor, OFF takes
    /// none.
    pub(crate) fn check_mfa(&self) -> Result<(), ApiError> {
        match self.mfa_configuration.as_str() {
            "ON" | "OPTIONAL" if !self.totp_active() => Err(invalid(
                "Invalid MFA configuration given, can't disable all MFAs with a required or optional configuration.",
            )),
            "ON" | "OPTIONAL" => Ok(()),
            _ if self.software_token_mfa == Some(true) => Err(invalid(
                "Invalid MFA configuration given, can't turn off MFA and configure an MFA together.",
            )),
            _ => Ok(()),
        }
    }

    /// Pools made before the schema was enforced kept CreateUserPool's `Schema` as given:
    /// its attributes are taken into the schema (those that are valid), so their custom
    /// attributes still exist.
    pub(crate) fn adopt_stored_schema(&mut self) {
        let Some(Value::Array(items)) = self.extra.remove("Schema") else {
            return;
        };
        for item in items {
            if let Err(e) = self.schema.add(std::slice::from_ref(&item), true) {
                tracing::warn!(error = %e.message, "a stored schema attribute was not adopted");
            }
        }
    }
}

pub(crate) fn default_true() -> bool {
    true
}

/// An app client's settings as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientConfig {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) explicit_auth_flows: Vec<String>,
    #[serde(default)]
    pub(crate) prevent_user_existence_errors: bool,
    pub(crate) access_token_minutes: i64,
    pub(crate) id_token_minutes: i64,
    pub(crate) refresh_token_minutes: i64,
    #[serde(default)]
    pub(crate) extra: Map<String, Value>,
}

impl ClientConfig {
    /// Whether the client may use an authentication flow (`ALLOW_...`). A client set up with
    /// the legacy names has SRP and refresh always, the admin password flow with
    /// `ADMIN_NO_SRP_AUTH`, the user password flow with `USER_PASSWORD_AUTH`, and only custom
    /// authentication (with refresh) under `CUSTOM_AUTH_FLOW_ONLY`.
    pub(crate) fn allows(&self, flow: &str) -> bool {
        let has = |f: &str| self.explicit_auth_flows.iter().any(|g| g == f);
        if self
            .explicit_auth_flows
            .iter()
            .all(|f| f.starts_with("ALLOW_"))
        {
            return has(flow);
        }
        let custom_only = has("CUSTOM_AUTH_FLOW_ONLY");
        match flow {
            "ALLOW_REFRESH_TOKEN_AUTH" | "ALLOW_CUSTOM_AUTH" => true,
            "ALLOW_USER_SRP_AUTH" => !custom_only,
            "ALLOW_ADMIN_USER_PASSWORD_AUTH" => !custom_only && has("ADMIN_NO_SRP_AUTH"),
            "ALLOW_USER_PASSWORD_AUTH" => !custom_only && has("USER_PASSWORD_AUTH"),
            _ => false,
        }
    }

    /// The grace period (seconds) of the client's refresh token rotation, if it rotates.
    pub(crate) fn rotation(&self) -> Option<i64> {
        let rotation = self.extra.get("RefreshTokenRotation")?;
        (rotation.get("Feature").and_then(Value::as_str) == Some("ENABLED")).then(|| {
            rotation
                .get("RetryGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        })
    }

    /// The client's `WriteAttributes` (`None`: the default, the standard attributes).
    pub(crate) fn write_attributes(&self) -> Option<Vec<String>> {
        string_list(&Value::Object(self.extra.clone()), "WriteAttributes")
    }

    /// The client's `ReadAttributes` (`None`: every attribute).
    pub(crate) fn read_attributes(&self) -> Option<Vec<String>> {
        string_list(&Value::Object(self.extra.clone()), "ReadAttributes")
    }

    /// How long a challenge session lasts (`AuthSessionValidity`, minutes; 3 by default).
    pub(crate) fn session_secs(&self) -> i64 {
        self.extra
            .get("AuthSessionValidity")
            .and_then(Value::as_i64)
            .unwrap_or(3)
            * 60
    }
}

/// An SRP challenge in progress, sealed into `SECRET_BLOCK` (the client returns it).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SrpBlock {
    /// Single use: the user's record notes it when it is answered.
    #[serde(default)]
    pub(crate) id: String,
    /// The user's `sub`: a user deleted and made again under the name is another user.
    #[serde(default)]
    pub(crate) sub: String,
    pub(crate) pool_id: String,
    pub(crate) client_id: String,
    /// Empty for an unknown user (PreventUserExistenceErrors): no claim can succeed.
    pub(crate) username_key: String,
    pub(crate) user_id: String,
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) big_b: String,
    pub(crate) expires_at: i64,
}

/// A ListUsers `Filter`: `attribute = "value"` (exact) or `attribute ^= "value"` (prefix).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UserFilter {
    pub(crate) attribute: String,
    pub(crate) prefix: bool,
    pub(crate) value: String,
}

impl UserFilter {
    const ATTRIBUTES: [&'static str; 10] = [
        "username",
        "email",
        "phone_number",
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "cognito:user_status",
        "status",
        "sub",
    ];

    pub(crate) fn parse(text: &str) -> Result<UserFilter, ApiError> {
        let bad = || invalid("Error while parsing filter.");
        let (attribute, rest, prefix) = match text.split_once("^=") {
            Some((a, r)) => (a, r, true),
            None => {
                let (a, r) = text.split_once('=').ok_or_else(bad)?;
                (a, r, false)
            }
        };
        let attribute = attribute.trim().trim_matches('"').to_owned();
        let value = rest.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(bad)?
            .replace("\\\"", "\"");
        if !Self::ATTRIBUTES.contains(&attribute.as_str()) {
            return Err(invalid(format!("Invalid search attribute: {attribute}")));
        }
        Ok(UserFilter {
            attribute,
            prefix,
            value,
        })
    }

    pub(crate) fn matches(&self, record: &UserRecord) -> bool {
        let actual = match self.attribute.as_str() {
            "username" => Some(record.username.as_str()),
            "cognito:user_status" => Some(record.status.as_str()),
            "status" => Some(if record.enabled {
                "Enabled"
            } else {
                "Disabled"
            }),
            other => attribute(record, other),
        };
        actual.is_some_and(|a| {
            if self.prefix {
                a.starts_with(&self.value)
            } else {
                a == self.value
            }
        })
    }
}

/// A group's settings (stored as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    pub(crate) description: Option<String>,
    pub(crate) precedence: Option<i64>,
    pub(crate) role_arn: Option<String>,
}

/// `cognito:groups`, `cognito:roles` and `cognito:preferred_role` for a user's groups: groups
/// ordered by precedence (unset last), the preferred role that of the group with the lowest
/// precedence, unless two groups with roles share it.
pub(crate) fn group_claims(
    groups: &[(String, GroupRecord)],
) -> (Vec<String>, Vec<String>, Option<String>) {
    let mut ordered: Vec<&(String, GroupRecord)> = groups.iter().collect();
    ordered.sort_by_key(|(name, g)| (g.precedence.unwrap_or(i64::MAX), name.clone()));
    let names = ordered.iter().map(|(n, _)| n.clone()).collect();
    let mut roles: Vec<String> = Vec::new();
    for (_, g) in &ordered {
        if let Some(r) = &g.role_arn
            && !roles.contains(r)
        {
            roles.push(r.clone());
        }
    }
    let with_roles: Vec<&GroupRecord> = ordered
        .iter()
        .map(|(_, g)| g)
        .filter(|g| g.role_arn.is_some())
        .collect();
    let preferred = match with_roles.as_slice() {
        [first, second, ..]
            if first.precedence == second.precedence && first.role_arn != second.role_arn =>
        {
            None
        }
        [first, ..] => first.role_arn.clone(),
        [] => None,
    };
    (names, roles, preferred)
}

/// A challenge in progress (sealed into the `Session` string).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChallengeSession {
    /// Single use: the user's record notes it when it is answered.
    #[serde(default)]
    pub(crate) id: String,
    /// The user's `sub`: a user deleted and made again under the name is another user.
    #[serde(default)]
    pub(crate) sub: String,
    pub(crate) pool_id: String,
    pub(crate) client_id: String,
    pub(crate) username_key: String,
    pub(crate) challenge: String,
    pub(crate) expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fifth failure in a row locks sign-in for one whole second, wherever in the
    /// clock's second it falls; each further failure doubles the lockout, up to 15 minutes.
    #[test]
    fn lockout_lasts_its_full_length_and_doubles() {
        for start_ms in [1_700_000_000_000, 1_700_000_000_999] {
            let mut record = UserRecord::default();
            for _ in 0..LOCKOUT_AFTER {
                count_failure(&mut record, start_ms).unwrap();
            }
            assert!(record.locked(start_ms + 999));
            assert!(!record.locked(start_ms + 1000));
            let refused = count_failure(&mut record, start_ms + 500).unwrap_err();
            assert_eq!(refused.message, "Password attempts exceeded");
            count_failure(&mut record, start_ms + 1000).unwrap();
            assert!(record.locked(start_ms + 2999));
            assert!(!record.locked(start_ms + 3000));
        }
        let (mut record, mut now_ms) = (UserRecord::default(), 0);
        let mut lockouts = Vec::new();
        for _ in 0..15 {
            count_failure(&mut record, now_ms).unwrap();
            lockouts.push((record.locked_until_ms - now_ms).max(0) / 1000);
            now_ms = now_ms.max(record.locked_until_ms);
        }
        assert_eq!(
            lockouts,
            [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]
        );
        // A lockout stored in seconds (before milliseconds) still holds, until it is written.
        let stored: UserRecord = serde_json::from_str(
            r#"{"username":"u","attributes":[],"status":"CONFIRMED","enabled":true,"failed_sign_ins":5,"locked_until":1700000900}"#,
        )
        .unwrap();
        assert!(stored.locked(1_700_000_899_000));
        assert!(!stored.locked(1_700_000_900_000));
        assert!(
            !serde_json::to_string(&stored)
                .unwrap()
                .contains("\"locked_until\"")
        );
    }
}
