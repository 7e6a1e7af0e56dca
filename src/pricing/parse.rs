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
        field: &'static str,
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

/// One LiteLLM entry, borrowing each price's literal JSON text.
#[derive(Deserialize)]
pub(super) struct RawEntry<'a> {
    #[serde(borrow, default)]
    pub(super) alias_of: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input_cost_per_token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_cost_per_token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_read_input_token_cost: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_creation_input_token_cost: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_cost_per_reasoning_token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input_cost_per_token_above_200k_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_cost_per_token_above_200k_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_read_input_token_cost_above_200k_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_creation_input_token_cost_above_200k_tokens: Option<&'a RawValue>,
}

impl RawEntry<'_> {
    /// The entry's prices; `Ok(None)` when it lacks an input or output price per token (image,
    /// audio and per-second models), which is not an error: such models are simply unpriced.
    pub(super) fn price(&self, model: &str) -> Result<Option<ModelPrice>, PriceError> {
        let [f_in, f_out, f_cr, f_cw, f_re, f_in2, f_out2, f_cr2, f_cw2] =
            ModelPrice::LITELLM_FIELDS;
        let get = |field: &'static str, raw: Option<&RawValue>| {
            raw.map(|r| parse_price(model, field, r)).transpose()
        };
        let (Some(input), Some(output)) = (
            get(f_in, self.input_cost_per_token)?,
            get(f_out, self.output_cost_per_token)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(ModelPrice {
            input,
            output,
            cache_read: get(f_cr, self.cache_read_input_token_cost)?,
            cache_write: get(f_cw, self.cache_creation_input_token_cost)?,
            reasoning: get(f_re, self.output_cost_per_reasoning_token)?,
            input_above_200k: get(f_in2, self.input_cost_per_token_above_200k_tokens)?,
            output_above_200k: get(f_out2, self.output_cost_per_token_above_200k_tokens)?,
            cache_read_above_200k: get(f_cr2, self.cache_read_input_token_cost_above_200k_tokens)?,
            cache_write_above_200k: get(
                f_cw2,
                self.cache_creation_input_token_cost_above_200k_tokens,
            )?,
        }))
    }
}

/// Parses a JSON number's literal text exactly (`2.5e-06` is `0.0000025`, not the nearest f64).
fn parse_price(model: &str, field: &'static str, raw: &RawValue) -> Result<Decimal, PriceError> {
    let text = raw.get();
    let invalid = |reason| PriceError::InvalidPrice {
        model: model.to_owned(),
        field,
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
fn parse_exact(text: &str) -> Option<Decimal> {
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
