//! Email deliveries over SMTP (lettre): STARTTLS by default, TLS, or plain only to a relay on
//! this machine. The password is used only to log in and never logged. Each mail's
//! Message-ID is made from the delivery key, so a mail sent twice after a crash is one
//! message to mail clients that deduplicate.

use futures_util::future::BoxFuture;
use lablink_actors::outbox_sender::NotificationChannel;
use lablink_schema::wire::NotificationEvent;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{EmailConfig, SmtpSecurity};

/// The configured SMTP channel.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// No credentials in debug output.
impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl Email {
    pub fn new(config: &EmailConfig) -> anyhow::Result<Self> {
        let builder = match config.security {
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.smtp_host)?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.smtp_host)?,
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp_host)
            }
        };
        let mut builder = builder
            .port(config.smtp_port)
            .timeout(Some(super::SEND_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Email {
            transport: builder.build(),
            from: config.from.parse()?,
            to: config
                .to
                .iter()
                .map(|to| to.parse())
                .collect::<Result<_, _>>()?,
        })
    }

    /// The mail for `event`.
    fn message(&self, event: &NotificationEvent) -> Result<Message, String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(format!("[LabLink] {}", event.subject))
            .message_id(Some(format!("<{}@lablink>", event.delivery_key)));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let details = serde_json::to_string_pretty(&event.details).unwrap_or_default();
        let mut body = format!(
            "{}\n\nEvent: {}\nAt: {} UTC\n",
            event.subject, event.event, event.occurred_at
        );
        if let Some(workshop) = event.workshop_id {
            body.push_str(&format!("Workshop: {workshop}\n"));
        }
        if let Some(hostname) = &event.hostname {
            body.push_str(&format!("VM: {hostname}\n"));
        }
        if event.details != serde_json::Value::Null {
            body.push_str(&format!("\nDetails:\n{details}\n"));
        }
        body.push_str(&format!("\nDelivery key: {}\n", event.delivery_key));
        builder
            .body(body)
            .map_err(|e| format!("cannot build the mail: {e}"))
    }
}

impl NotificationChannel for Email {
    fn name(&self) -> &str {
        "email"
    }

    fn send(&self, event: &NotificationEvent) -> BoxFuture<'static, Result<(), String>> {
        let message = self.message(event);
        let transport = self.transport.clone();
        Box::pin(async move {
            transport
                .send(message?)
                .await
                .map(|_| ())
                .map_err(|e| format!("the SMTP server did not take the mail: {e}"))
        })
    }
}
