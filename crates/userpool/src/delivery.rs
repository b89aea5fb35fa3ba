//! Sending codes and temporary passwords: file outbox, log line, webhook or SMTP.

use crate::*;

/// How verification codes and temporary passwords reach users.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// One log line per message (codes included: development only).
    Log,
    /// One JSON file per message in this directory.
    Outbox(PathBuf),
    /// One JSON POST per message to this URL (a mailer or SMS gateway of the operator's).
    Webhook {
        url: String,
        client: reqwest::Client,
    },
    /// Email through an SMTP server (`smtp://`, `smtps://`, `?tls=required` for STARTTLS).
    /// Users with only a phone number get nothing (logged).
    Smtp {
        transport: Box<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
        from: lettre::message::Mailbox,
    },
}

impl Delivery {
    /// SMTP delivery from a URL and a sender address.
    pub fn smtp(url: &str, from: &str) -> Result<Delivery, String> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP URL: {e}"))?
            .build();
        let transport = Box::new(transport);
        let from = from
            .parse()
            .map_err(|e| format!("SMTP sender address: {e}"))?;
        Ok(Delivery::Smtp { transport, from })
    }
}

/// The subject and text of an email for a message.
pub(crate) fn email_text(purpose: &str, field: &str, secret: &str) -> (String, String) {
    if field == "temporary_password" {
        return (
            "Your temporary password".to_owned(),
            format!("Your temporary password is {secret}\n"),
        );
    }
    let subject = match purpose {
        "ForgotPassword" => "Your password reset code",
        _ => "Your verification code",
    };
    (
        subject.to_owned(),
        format!("Your verification code is {secret}\n"),
    )
}
