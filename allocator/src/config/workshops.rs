//! Section `workshops`: prices for the spend estimate, the warm-up plan's defaults, and the
//! currency spend is shown in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// Section `workshops`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkshopsConfig {
    /// What prices are in, shown beside every amount (e.g. `USD`).
    pub currency: String,
    /// Price of one VM for one hour, by instance type (e.g. `g4dn.xlarge: 0.526`). Copy them
    /// from your cloud's price list: nothing is fetched at run time. A workshop whose
    /// instance type has no price here is estimated at 0.
    pub prices: BTreeMap<String, f64>,
    /// The instance type of a workshop that sets none (its price is looked up above). Unset:
    /// the provider's own (`provider.aws.instance_type`, or the Terraform variable
    /// `instance_type`), or `local` on the local provider.
    pub default_instance_type: Option<String>,
    /// How long a VM takes to be ready, until boots have been measured.
    pub boot_estimate_secs: f64,
    /// Most VMs asked for in one warm-up batch.
    pub warmup_batch_size: u32,
    /// VMs made beyond a workshop's headcount when its request does not say.
    pub default_spare_vms: u32,
}

impl Default for WorkshopsConfig {
    fn default() -> Self {
        WorkshopsConfig {
            currency: "USD".to_owned(),
            prices: BTreeMap::new(),
            default_instance_type: None,
            boot_estimate_secs: 300.0,
            warmup_batch_size: 10,
            default_spare_vms: 2,
        }
    }
}

impl WorkshopsConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        let currency = self.currency.trim();
        if currency.is_empty() || currency.len() > 8 {
            return Err(Invalid::new(
                "workshops.currency",
                "must be a short currency name such as USD",
            ));
        }
        if let Some((kind, _)) = self
            .prices
            .iter()
            .find(|(_, price)| !price.is_finite() || **price < 0.0 || **price > 10_000.0)
        {
            return Err(Invalid::new(
                "workshops.prices",
                format!("the price of {kind} must be between 0 and 10000 per VM-hour"),
            ));
        }
        if !(self.boot_estimate_secs.is_finite()
            && (0.1..=86_400.0).contains(&self.boot_estimate_secs))
        {
            return Err(Invalid::new(
                "workshops.boot_estimate_secs",
                "must be between 0.1 and 86400 seconds",
            ));
        }
        if !(1..=1000).contains(&self.warmup_batch_size) {
            return Err(Invalid::new(
                "workshops.warmup_batch_size",
                "must be between 1 and 1000",
            ));
        }
        Ok(())
    }

    /// The price of one VM-hour of `instance_type`, in millionths of the currency.
    pub fn price_micros(&self, instance_type: &str) -> i64 {
        self.prices
            .get(instance_type)
            .map(|price| (price * 1e6).round() as i64)
            .unwrap_or(0)
    }
}
