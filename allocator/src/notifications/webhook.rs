//! Webhook deliveries: the event as a JSON body, POSTed with headers naming the event and
//! its delivery key, and signed: `X-LabLink-Signature: sha256=<hex>` is the HMAC-SHA256,
//! under the webhook's secret, of `<X-LabLink-Timestamp>.<body>`. A receiver recomputes it,
//! and refuses an old timestamp, so a captured request cannot be replayed later. Any 2xx
//! answer counts as delivered.

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use lablink_actors::outbox_sender::NotificationChannel;
use lablink_schema::wire::NotificationEvent;
use sha2::Sha256;

use crate::config::channel_url::shown;
use crate::config::WebhookConfig;

pub const SIGNATURE_HEADER: &str = "X-LabLink-Signature";
pub const TIMESTAMP_HEADER: &str = "X-LabLink-Timestamp";
pub const EVENT_HEADER: &str = "X-LabLink-Event";
pub const DELIVERY_HEADER: &str = "X-LabLink-Delivery";

/// One configured webhook.
pub struct Webhook {
    channel: String,
    url: reqwest::Url,
    secret: Vec<u8>,
    http: reqwest::Client,
}

/// The secret stays out of debug output.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("channel", &self.channel)
            .field("url", &shown(self.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Self> {
        Ok(Webhook {
            channel: format!("webhook:{}", config.name),
            url: reqwest::Url::parse(config.url.expose())?,
            secret: config.secret.expose().as_bytes().to_vec(),
            http: reqwest::Client::builder()
                .timeout(super::SEND_TIMEOUT)
                // A receiver's redirect is not followed: the signed body goes only where
                // the admin configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl NotificationChannel for Webhook {
    fn name(&self) -> &str {
        &self.channel
    }

    fn send(&self, event: &NotificationEvent) -> BoxFuture<'static, Result<(), String>> {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let timestamp = chrono::Utc::now().timestamp();
        let request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.event.as_str())
            .header(DELIVERY_HEADER, event.delivery_key.as_str())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(&self.secret, timestamp, &body))
            .body(body);
        // The URL is a secret (its path may be the key): errors name the host only.
        let at = shown(self.url.as_str());
        Box::pin(async move {
            let response = request
                .send()
                .await
                .map_err(|e| format!("cannot reach the webhook at {at}: {}", e.without_url()))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the webhook at {at} answered {status}"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // Checked against Python: hmac.new(b"0123456789abcdef", b"1700000000.{}",
        // hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"0123456789abcdef", 1_700_000_000, b"{}"),
            "sha256=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
        );
    }
}
