//! Reading LiteLLM's price file: each price from its literal JSON text, never through `f64`.

use super::*;

/// Why a LiteLLM price file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The text is not a JSON object (of model name → entry).
    #[error(
        "price table is not a JSON object of models: {0}; pass LiteLLM's model_prices_and_context_window.json"
    )]
    Json(#[source] serde_json::Error),
    /// A model's entry is not a JSON object.
    #[error(
        "model `{model}`: entry is not a JSON object; map each model to an object of prices (or remove it)"
    )]
    NotAnObject {
        /// The model's key.
        model: String,
    },
    /// A model's entry is an object that could not be read (e.g. a duplicate field).
    #[error("model `{model}`: entry is malformed: {source}; fix or remove the entry")]
    Entry {
        /// The model's key.
        model: String,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// A price field holds something other than a non-negative, exactly representable number.
    #[error("model `{model}`: `{field}` is `{value}`, which {reason}; fix or remove the field")]
    InvalidPrice {
        /// The model's key.
        model: String,
        /// The LiteLLM field name, e.g. `input_cost_per_token`.
        field: String,
        /// The offending JSON text, verbatim.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Nothing in the file had both an input and an output price per token.
    #[error(
        "no model has both `input_cost_per_token` and `output_cost_per_token`; is this LiteLLM's price file?"
    )]
    NoPrices,
}

/// LiteLLM's web search price: an object of prices by search context size.
pub(super) const SEARCH_KEY: &str = "search_context_cost_per_query";

/// One LiteLLM entry: its members in order, each value's literal JSON text borrowed.
/// A member repeated is an error (serde's maps would keep the last one silently).
pub(super) struct RawEntry<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for RawEntry<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = RawEntry<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of prices")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    if members.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate field `{key}`"
                        )));
                    }
                    members.push((key, value));
                }
                Ok(RawEntry { members })
            }
        }
        deserializer.deserialize_map(Members)
    }
}

impl RawEntry<'_> {
    /// Whether the entry is only `{"alias_of": …}` (or has one): an alias, not a price.
    pub(super) fn is_alias(&self) -> bool {
        self.members
            .iter()
            .any(|(k, v)| k == "alias_of" && v.get() != "null")
    }

    /// The entry's prices; `Ok(None)` when it lacks an input or output price per token (image,
    /// audio and per-second models), which is not an error: such models are simply unpriced.
    /// Fields the crate does not read ([`ModelPrice::reads_litellm_key`]) are ignored, `null`
    /// values count as absent.
    pub(super) fn price(&self, model: &str) -> Result<Option<ModelPrice>, PriceError> {
        let mut rates: Vec<(RateKey, Decimal)> = Vec::new();
        let mut web_search = None;
        for (name, raw) in &self.members {
            if raw.get() == "null" {
                continue;
            }
            if name == SEARCH_KEY {
                web_search = Some(search_price(model, raw)?);
            } else if let Some(key) = RateKey::parse(name) {
                rates.push((key, parse_price(model, name, raw)?));
            }
        }
        let base = |rate| {
            rates
                .iter()
                .find(|(k, _)| *k == RateKey::base(rate))
                .map(|(_, v)| *v)
        };
        let (Some(input), Some(output)) = (base(Rate::Input), base(Rate::Output)) else {
            return Ok(None);
        };
        let mut price = ModelPrice::new(input, output);
        price.web_search = web_search;
        for (key, value) in rates {
            price.set_price(key, value);
        }
        Ok(Some(price))
    }
}

/// `{"search_context_size_low": 0.03, …}`; sizes not listed stay `None`.
fn search_price(model: &str, raw: &RawValue) -> Result<SearchPrice, PriceError> {
    let invalid = |reason| PriceError::InvalidPrice {
        model: model.to_owned(),
        field: SEARCH_KEY.to_owned(),
        value: raw.get().to_owned(),
        reason,
    };
    let sizes: BTreeMap<Cow<'_, str>, &RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| invalid("is not an object of prices by search_context_size_*"))?;
    let mut price = SearchPrice::default();
    for (size, value) in sizes {
        let slot = match size.as_ref() {
            "search_context_size_low" => &mut price.low,
            "search_context_size_medium" => &mut price.medium,
            "search_context_size_high" => &mut price.high,
            _ => continue,
        };
        if value.get() != "null" {
            let field = format!("{SEARCH_KEY}.{size}");
            *slot = Some(parse_price(model, &field, value)?);
        }
    }
    Ok(price)
}

/// Parses a JSON number's literal text exactly (`2.5e-06` is `0.0000025`, not the nearest f64).
/// `name` is the field as the file spells it (for the error).
fn parse_price(model: &str, name: &str, raw: &RawValue) -> Result<Decimal, PriceError> {
    let text = raw.get();
    let invalid = |reason| PriceError::InvalidPrice {
        model: model.to_owned(),
        field: name.to_owned(),
        value: text.to_owned(),
        reason,
    };
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(invalid("is not a JSON number (USD per token)"));
    }
    let value =
        parse_exact(text).ok_or_else(|| invalid("does not fit an exact 28-digit decimal"))?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(invalid("is negative"));
    }
    Ok(value)
}

/// Exact decimal of a JSON number literal; `None` if it needs more than 28 significant digits
/// or decimal places (rather than rounding, which `Decimal::from_scientific` would do).
pub(crate) fn parse_exact(text: &str) -> Option<Decimal> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let mut value = Decimal::from_str_exact(mantissa).ok()?;
    let scale = i64::from(value.scale()) - i64::from(exponent);
    if scale >= 0 {
        value.set_scale(u32::try_from(scale).ok()?).ok()?;
    } else {
        value.set_scale(0).ok()?;
        let shift = u32::try_from(-scale).ok()?;
        let factor = Decimal::from(10u64.checked_pow(shift.min(19))?);
        value = value.checked_mul(factor)?;
        if shift > 19 {
            value = value.checked_mul(Decimal::from(10u64.checked_pow(shift - 19)?))?;
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn literals_parse_exactly() {
        assert_eq!(parse_exact("2.5e-06"), Some(dec("0.0000025")));
        assert_eq!(parse_exact("3e-07"), Some(dec("0.0000003")));
        assert_eq!(parse_exact("1.25e-06"), Some(dec("0.00000125")));
        assert_eq!(parse_exact("5.00003e-06"), Some(dec("0.00000500003")));
        assert_eq!(parse_exact("2.5E-6"), Some(dec("0.0000025")));
        assert_eq!(parse_exact("1.5e+2"), Some(dec("150")));
        assert_eq!(parse_exact("12e3"), Some(dec("12000")));
        assert_eq!(parse_exact("0.0"), Some(Decimal::ZERO));
        assert_eq!(parse_exact("0"), Some(Decimal::ZERO));
        // The f64 nearest to 1e-07 is 9.99999999999999954748e-08; the literal must not become it.
        assert_eq!(parse_exact("1e-07").unwrap().to_string(), "0.0000001");
    }

    #[test]
    fn literals_that_cannot_be_exact_are_refused() {
        assert_eq!(parse_exact("1e-29"), None);
        assert_eq!(parse_exact("1.00000000000000000000000000001"), None);
        assert_eq!(parse_exact("1e40"), None);
        assert_eq!(parse_exact("abc"), None);
        assert_eq!(parse_exact("1e"), None);
    }
}
