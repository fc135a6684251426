//! Prices and the cost of an invocation, in exact integer arithmetic.
//!
//! Money is counted in nano-units of the configured currency (10^-9 USD when
//! the currency is USD), in `u64`; intermediate products use `u128`, so no
//! realistic price or usage overflows and no float ever touches money.
//!
//! An invocation's cost is the sum of four parts, each rounded **up** to a
//! whole nano-unit on its own (so an operator never bills less than the
//! usage, and at most 3 nano-units more than the exact sum):
//!
//! | part | formula |
//! |---|---|
//! | request | `per_request` |
//! | compute | `fuel × per_million_fuel / 10^6` |
//! | memory | `peak_memory_bytes × wall_ns × per_gb_second / (2^30 × 10^9)` |
//! | traffic | `(request_body + response_body bytes) × per_gb_transfer / 2^30` |
//!
//! GB means GiB (2^30 bytes) for memory and traffic alike, as in AWS
//! Lambda's GB-second.

use serde::Deserialize;

/// Prices, in nano-units of `currency`. All default to 0 (metering without
/// billing).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Currency code, for display only. Default: `USD`.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Per request.
    #[serde(default)]
    pub per_request: u64,
    /// Per million units of fuel.
    #[serde(default)]
    pub per_million_fuel: u64,
    /// Per GiB-second of peak linear memory held for the wall time.
    #[serde(default)]
    pub per_gb_second: u64,
    /// Per GiB of request plus response body.
    #[serde(default)]
    pub per_gb_transfer: u64,
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            currency: default_currency(),
            per_request: 0,
            per_million_fuel: 0,
            per_gb_second: 0,
            per_gb_transfer: 0,
        }
    }
}

/// A per-function override: only the fields given replace the app's prices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricesOverride {
    /// Replaces `per_request`.
    pub per_request: Option<u64>,
    /// Replaces `per_million_fuel`.
    pub per_million_fuel: Option<u64>,
    /// Replaces `per_gb_second`.
    pub per_gb_second: Option<u64>,
    /// Replaces `per_gb_transfer`.
    pub per_gb_transfer: Option<u64>,
}

impl Prices {
    /// These prices with `o`'s fields replacing theirs.
    pub fn with_override(&self, o: &PricesOverride) -> Prices {
        Prices {
            currency: self.currency.clone(),
            per_request: o.per_request.unwrap_or(self.per_request),
            per_million_fuel: o.per_million_fuel.unwrap_or(self.per_million_fuel),
            per_gb_second: o.per_gb_second.unwrap_or(self.per_gb_second),
            per_gb_transfer: o.per_gb_transfer.unwrap_or(self.per_gb_transfer),
        }
    }

    /// The cost of one invocation, in nano-units.
    pub fn cost(&self, usage: &Usage) -> u64 {
        const GIB: u128 = 1 << 30;
        const NANOS_PER_SECOND: u128 = 1_000_000_000;
        // Products saturate: a saturated part exceeds u64 anyway, and the
        // total is capped at u64::MAX.
        let compute = ceil_div(
            u128::from(usage.fuel).saturating_mul(u128::from(self.per_million_fuel)),
            1_000_000,
        );
        let memory = ceil_div(
            u128::from(usage.peak_memory_bytes)
                .saturating_mul(u128::from(usage.wall_nanos))
                .saturating_mul(u128::from(self.per_gb_second)),
            GIB * NANOS_PER_SECOND,
        );
        let bytes = u128::from(usage.request_bytes) + u128::from(usage.response_bytes);
        let traffic = ceil_div(bytes.saturating_mul(u128::from(self.per_gb_transfer)), GIB);
        let total = u128::from(self.per_request)
            .saturating_add(compute)
            .saturating_add(memory)
            .saturating_add(traffic);
        u64::try_from(total).unwrap_or(u64::MAX)
    }
}

/// What an invocation used, as far as prices are concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Fuel consumed (Wasm plus host charges).
    pub fuel: u64,
    /// Peak linear memory, bytes.
    pub peak_memory_bytes: u64,
    /// Wall time, nanoseconds.
    pub wall_nanos: u64,
    /// Request body bytes read.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
}

fn ceil_div(n: u128, d: u128) -> u128 {
    n.div_ceil(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda_like() -> Prices {
        Prices {
            currency: "USD".into(),
            // $0.20 per million requests.
            per_request: 200,
            // $0.05 per billion fuel.
            per_million_fuel: 50,
            // $0.0000166667 per GB-second.
            per_gb_second: 16_667,
            // $0.09 per GB.
            per_gb_transfer: 90_000_000,
        }
    }

    #[test]
    fn zero_usage_costs_the_request_price() {
        assert_eq!(lambda_like().cost(&Usage::default()), 200);
        assert_eq!(Prices::default().cost(&Usage::default()), 0);
    }

    #[test]
    fn hand_computed_costs() {
        let usage = Usage {
            fuel: 3_000_000,
            // 128 MiB for 250 ms: 1/32 GiB-s.
            peak_memory_bytes: 128 << 20,
            wall_nanos: 250_000_000,
            // 1 MiB in, 3 MiB out: 1/256 GiB.
            request_bytes: 1 << 20,
            response_bytes: 3 << 20,
        };
        // 200 + 3 * 50 + ceil(16667 / 32) + 90_000_000 / 256
        //   = 200 + 150 + ceil(520.84375) + 351562.5 -> 351563
        assert_eq!(lambda_like().cost(&usage), 200 + 150 + 521 + 351_563);
    }

    #[test]
    fn each_part_rounds_up_on_its_own() {
        let prices = Prices {
            per_million_fuel: 1,
            ..Prices::default()
        };
        // One fuel unit costs a millionth of a nano-unit: billed as 1.
        let one = Usage {
            fuel: 1,
            ..Usage::default()
        };
        assert_eq!(prices.cost(&one), 1);
        // Exactly one nano-unit: no rounding.
        let million = Usage {
            fuel: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(prices.cost(&million), 1);
        let million_and_one = Usage {
            fuel: 1_000_001,
            ..Usage::default()
        };
        assert_eq!(prices.cost(&million_and_one), 2);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let prices = Prices {
            per_request: u64::MAX / 2,
            per_million_fuel: u64::MAX,
            per_gb_second: u64::MAX,
            per_gb_transfer: u64::MAX,
            ..Prices::default()
        };
        let usage = Usage {
            fuel: u64::MAX,
            peak_memory_bytes: u64::MAX,
            wall_nanos: u64::MAX,
            request_bytes: u64::MAX,
            response_bytes: u64::MAX,
        };
        assert_eq!(prices.cost(&usage), u64::MAX);
    }

    #[test]
    fn overrides_replace_only_given_fields() {
        let base = lambda_like();
        let o = PricesOverride {
            per_million_fuel: Some(7),
            ..PricesOverride::default()
        };
        let merged = base.with_override(&o);
        assert_eq!(merged.per_million_fuel, 7);
        assert_eq!(merged.per_request, 200);
        assert_eq!(merged.per_gb_transfer, 90_000_000);
    }
}
