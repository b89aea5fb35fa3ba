//! The lockout: per-user attempt slots, failures counted by compare-and-swap before they are
//! answered, and names that are no user counted alike (ghosts, decoys).

use crate::*;

impl UserPools<'_> {
    /// A wrong answer for a name that is no user, answered as a real user's would be: the
    /// same concurrency limit, lockout and durable write (`wrong` is the answer).
    pub(crate) async fn ghost_failed(
        &self,
        pool_id: &str,
        name: &str,
        wrong: ApiError,
    ) -> ApiError {
        let ghost_row = UserRow {
            pool_id: pool_id.to_owned(),
            username_key: format!("\0ghost:{}", name.to_lowercase()),
            sub: String::new(),
            record: String::new(),
            secrets_sealed: Vec::new(),
            created_at: 0,
            updated_at: 0,
            version: 0,
        };
        let record = self
            .keys
            .ghost(pool_id, name, |g| g.record.clone())
            .unwrap_or_default();
        let slot = match self.attempt_slot(&ghost_row, &record) {
            Ok(slot) => slot,
            Err(e) => return e,
        };
        let now_ms = self.now_ms();
        let counted = self
            .keys
            .ghost(pool_id, name, |g| count_failure(&mut g.record, now_ms))
            .unwrap_or(Ok(()));
        if let Err(e) = self.decoy(pool_id, name).await {
            return e;
        }
        drop(slot);
        counted.err().unwrap_or(wrong)
    }

    /// The durable write a real user's change costs, for answering about a name that is none.
    pub(crate) async fn decoy(&self, pool_id: &str, name: &str) -> Result<(), ApiError> {
        let digest = self.master.digest(
            "userpool-decoy",
            format!("{pool_id}\0{}", name.to_lowercase()).as_bytes(),
        );
        let byte = |i: usize| digest.get(i).copied().unwrap_or(0);
        let slot = i64::from(u16::from_be_bytes([byte(0), byte(1)]) % 1024);
        self.store
            .decoy_write(pool_id, slot, self.now())
            .await
            .map_err(internal)
    }

    /// A code-confirming call about a user that does not exist: with PreventUserExistenceErrors
    /// the answer (and cost, and attempt limit) a wrong code gets, otherwise
    /// `UserNotFoundException`.
    pub(crate) async fn unknown_user(
        &self,
        pool_id: &str,
        client: &ClientConfig,
        name: &str,
    ) -> ApiError {
        if client.prevent_user_existence_errors {
            self.ghost_code(pool_id, name).await
        } else {
            err("UserNotFoundException", "User does not exist.")
        }
    }

    /// A wrong code for a name that is no user: counted as a real user's code attempts are.
    pub(crate) async fn ghost_code(&self, pool_id: &str, name: &str) -> ApiError {
        let spent = self
            .keys
            .ghost(pool_id, name, |g| {
                g.code_attempts += 1;
                g.code_attempts > MAX_CODE_ATTEMPTS
            })
            .unwrap_or(false);
        if let Err(e) = self.decoy(pool_id, name).await {
            return e;
        }
        if spent {
            err(
                "LimitExceededException",
                "Attempt limit exceeded, please try after some time.",
            )
        } else {
            err(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            )
        }
    }

    /// Lets a password (or SRP claim) be checked: refused during a lockout, and refused
    /// (`TooManyRequestsException`, which clients retry) while the failures so far plus the
    /// checks already running for this user on this node would reach the lockout. So no more
    /// than five guesses are ever checked before the lockout starts, however many arrive at
    /// once, and a successful sign-in writes nothing when there were no failures.
    pub(crate) fn attempt_slot(
        &self,
        row: &UserRow,
        record: &UserRecord,
    ) -> Result<AttemptSlot, ApiError> {
        let now = self.now();
        if record.locked(self.now_ms()) {
            return Err(not_authorized("Password attempts exceeded"));
        }
        let failures = if now - record.last_attempt_at >= 900 {
            0
        } else {
            record.failed_sign_ins
        };
        let budget = LOCKOUT_AFTER.saturating_sub(failures).max(1);
        self.keys
            .attempt_slot((row.pool_id.clone(), row.username_key.clone()), budget)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "TooManyRequestsException",
                    "Too many sign-in attempts for this user at once; try again.",
                )
            })
    }

    /// A checked password (or SRP claim) was wrong: counted (compare-and-swap) before the
    /// caller hears it. `consumes` spends a single-use SRP secret block.
    pub(crate) async fn attempt_failed(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        mut record: UserRecord,
        consumes: Option<(&str, i64)>,
    ) -> Result<(), ApiError> {
        let now = self.now();
        count_failure(&mut record, self.now_ms())?;
        if let Some((id, expires_at)) = consumes {
            record.note_session(id, expires_at, true, now);
        }
        let secrets = self.open_secrets(row)?;
        self.save_user(config, row, &record, &secrets).await?;
        Ok(())
    }

    /// A checked password (or SRP claim) was right: failures start again from zero, unless
    /// an MFA code is still to come (wrong codes then add up across sign-ins instead of each
    /// sign-in buying new guesses). Writes only when something changed.
    pub(crate) async fn attempt_succeeded(
        &self,
        config: &PoolConfig,
        row: &UserRow,
        mut record: UserRecord,
        consumes: Option<(&str, i64)>,
    ) -> Result<(UserRow, UserRecord), ApiError> {
        let mfa = config.mfa_configuration.as_str();
        let mfa_follows = record.software_token_mfa && (mfa == "ON" || mfa == "OPTIONAL");
        let reset = !mfa_follows && (record.failed_sign_ins > 0 || record.locked_until_ms > 0);
        if reset {
            record.failed_sign_ins = 0;
            record.locked_until_ms = 0;
        }
        if let Some((id, expires_at)) = consumes {
            record.note_session(id, expires_at, true, self.now());
        } else if !reset {
            return Ok((row.clone(), record));
        }
        let secrets = self.open_secrets(row)?;
        let row = self.save_user(config, row, &record, &secrets).await?;
        Ok((row, record))
    }
}
