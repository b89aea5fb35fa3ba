//! Confirmation and reset codes: issued, delivered, checked (bounded attempts).

use crate::*;

impl UserPools<'_> {
    /// Writes a message (a code or a temporary password) for the user: by email when the user
    /// has an email address, else by SMS.
    pub(crate) async fn deliver(
        &self,
        pool_id: &str,
        record: &UserRecord,
        purpose: &str,
        field: &str,
        secret: &str,
    ) -> Result<Value, ApiError> {
        let attr = match attribute(record, "email") {
            Some(_) => "email",
            None => "phone_number",
        };
        self.deliver_to(pool_id, record, attr, purpose, field, secret)
            .await
    }

    /// Writes a message for the user to one of its contact attributes (`email`: by email,
    /// `phone_number`: by SMS).
    pub(crate) async fn deliver_to(
        &self,
        pool_id: &str,
        record: &UserRecord,
        attr: &str,
        purpose: &str,
        field: &str,
        secret: &str,
    ) -> Result<Value, ApiError> {
        let medium = if attr == "phone_number" {
            "SMS"
        } else {
            "EMAIL"
        };
        let destination = attribute(record, attr).unwrap_or("").to_owned();
        let message = json!({
            "pool_id": pool_id,
            "username": record.username,
            "purpose": purpose,
            "delivery_medium": medium,
            "destination": destination,
            field: secret,
            "created_at": self.now(),
        });
        match self.delivery {
            Delivery::Log => {
                tracing::info!(target: "cognate::delivery", pool_id, username = %record.username, purpose, text = %message, "message to a user");
            }
            Delivery::Outbox(dir) => {
                std::fs::create_dir_all(dir).map_err(internal)?;
                let name = format!(
                    "{}-{}.json",
                    self.now.unix_timestamp_nanos(),
                    uuid::Uuid::new_v4().simple()
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, serde_json::to_vec_pretty(&message).map_err(internal)?)
                    .map_err(internal)?;
                std::fs::rename(&tmp, dir.join(name)).map_err(internal)?;
            }
            Delivery::Webhook { url, client } => {
                // As with Cognito's own delivery, the call succeeds even if the message could
                // not be handed over; the failure is logged (without the secret).
                let sent = client
                    .post(url)
                    .json(&message)
                    .timeout(std::time::Duration::from_secs(5))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                if let Err(e) = sent {
                    tracing::error!(pool_id, purpose, error = %e.without_url(), "message webhook failed");
                }
            }
            Delivery::Smtp { transport, from } => {
                use lettre::AsyncTransport as _;
                let to = (medium == "EMAIL")
                    .then(|| destination.parse::<lettre::message::Mailbox>().ok())
                    .flatten();
                match to {
                    None => tracing::warn!(
                        pool_id,
                        purpose,
                        "no email address to deliver to (SMS is not configured)"
                    ),
                    Some(to) => {
                        let (subject, text) = email_text(purpose, field, secret);
                        let email = lettre::Message::builder()
                            .from(from.clone())
                            .to(to)
                            .subject(subject)
                            .body(text)
                            .map_err(internal)?;
                        if let Err(e) = transport.send(email).await {
                            tracing::error!(pool_id, purpose, error = %e, "email delivery failed");
                        }
                    }
                }
            }
        }
        Ok(json!({
            "Destination": mask(&destination),
            "DeliveryMedium": medium,
            "AttributeName": attr,
        }))
    }

    /// Stores what verifies `password`: its SRP salt and verifier, which both password and SRP
    /// sign-in check against (any hash from before goes). The password itself is never kept.
    pub(crate) async fn set_password(
        &self,
        secrets: &mut UserSecrets,
        pool_id: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ApiError> {
        let verifier =
            password::derive_off_thread(password, pool_suffix(pool_id), username).await?;
        secrets.password_hash = None;
        secrets.srp = Some(verifier);
        Ok(())
    }

    pub(crate) fn new_code(&self, purpose: &str) -> Result<(String, PendingCode), ApiError> {
        let code = self.random_string(6, b"0123456789")?;
        Ok((
            code.clone(),
            PendingCode {
                purpose: purpose.to_owned(),
                hash: hex::encode(ring::digest::digest(&ring::digest::SHA256, code.as_bytes())),
                expires_at: self.now() + CODE_LIFETIME_SECS,
                attempts: 0,
                sent_to: None,
            },
        ))
    }

    /// Checks a code; on a mismatch counts the attempt (the caller saves the secrets).
    pub(crate) fn check_code(
        &self,
        secrets: &mut UserSecrets,
        purpose: &str,
        code: &str,
    ) -> Result<(), ApiError> {
        let mismatch = || {
            err(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            )
        };
        let Some(pending) = secrets.code.as_mut().filter(|c| c.purpose == purpose) else {
            return Err(mismatch());
        };
        if pending.attempts >= MAX_CODE_ATTEMPTS {
            return Err(err(
                "LimitExceededException",
                "Attempt limit exceeded, please try after some time.",
            ));
        }
        let given = hex::encode(ring::digest::digest(&ring::digest::SHA256, code.as_bytes()));
        // Compared without an early exit, so timing does not reveal a matching prefix.
        let differs = given.len() != pending.hash.len()
            || given
                .bytes()
                .zip(pending.hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differs {
            pending.attempts += 1;
            return Err(mismatch());
        }
        if pending.expires_at < self.now() {
            return Err(err(
                "ExpiredCodeException",
                "Invalid code provided, please request a code again.",
            ));
        }
        secrets.code = None;
        Ok(())
    }
}

/// The attribute a sign-up code goes to: the phone number when the pool auto-verifies it and
/// the user has one (with both auto-verified, Cognito verifies only the phone number), else
/// the email address likewise; none when the user gave none of the pool's auto-verified
/// attributes (no message is sent then).
pub(crate) fn sign_up_channel(config: &PoolConfig, record: &UserRecord) -> Option<&'static str> {
    ["phone_number", "email"].into_iter().find(|a| {
        config.auto_verified_attributes.iter().any(|v| v == a) && attribute(record, a).is_some()
    })
}
