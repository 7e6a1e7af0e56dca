//! A [`Decimal`] in PostgreSQL's binary `NUMERIC` format, for the bulk path's `COPY` rows.
//!
//! The format (PostgreSQL's `numeric_send`): the number of base-10,000 digits, the weight of
//! the first (10,000ⁿ), the sign (`0x0000` or `0x4000`), the display scale (decimal places
//! after the point, kept as given: `1.50` stays `1.50`, `0.000` stays `0.000`), then the
//! digits, most significant first, without leading or trailing zero digits. Written here
//! rather than with sqlx's `rust_decimal` feature: that encoding drops the scale of a zero
//! (`0.000` would be stored as `0`, where the text path stores `0.000`) and the feature turns
//! on `rust_decimal`'s `maths` for the whole build.

use rust_decimal::Decimal;

/// `NUMERIC`'s sign word of a negative number.
const NEGATIVE: u16 = 0x4000;

/// Appends the binary `NUMERIC` of `value` (without the `COPY` field length) to `buf`.
pub(super) fn encode(value: &Decimal, buf: &mut Vec<u8>) {
    let scale = value.scale(); // 0..=28
    // The digits after the point, padded to whole base-10,000 digits.
    let fraction_digits = scale.div_ceil(4);
    let mut mantissa = value.mantissa().unsigned_abs() * 10u128.pow(fraction_digits * 4 - scale);
    // A Decimal's mantissa is below 2^96 ≈ 7.9·10^28, times at most 1,000: 9 base-10,000 digits.
    let mut digits = [0i16; 10];
    let mut n = 0;
    while mantissa != 0 {
        digits[n] = (mantissa % 10_000) as i16;
        mantissa /= 10_000;
        n += 1;
    }
    let digits = &mut digits[..n];
    digits.reverse();
    // The weight of the first digit: the digits before the point, minus one.
    let weight = n as i16 - fraction_digits as i16 - 1;
    let significant = digits.len() - digits.iter().rev().take_while(|&&d| d == 0).count();
    let digits = &digits[..significant];
    let (weight, sign) = if digits.is_empty() {
        (0, 0) // zero: no digits, weight 0, positive, whatever the sign bit said
    } else if value.is_sign_negative() {
        (weight, NEGATIVE)
    } else {
        (weight, 0)
    };
    buf.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    buf.extend_from_slice(&weight.to_be_bytes());
    buf.extend_from_slice(&sign.to_be_bytes());
    buf.extend_from_slice(&(scale as u16).to_be_bytes());
    for d in digits {
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// The encoding as (digits, weight, sign, scale).
    fn fields(text: &str) -> (Vec<i16>, i16, u16, u16) {
        let mut buf = Vec::new();
        encode(&Decimal::from_str(text).unwrap(), &mut buf);
        let word = |i: usize| [buf[i], buf[i + 1]];
        let n = i16::from_be_bytes(word(0)) as usize;
        assert_eq!(buf.len(), 8 + 2 * n, "{text}");
        let digits = (0..n)
            .map(|i| i16::from_be_bytes(word(8 + 2 * i)))
            .collect();
        (
            digits,
            i16::from_be_bytes(word(2)),
            u16::from_be_bytes(word(4)),
            u16::from_be_bytes(word(6)),
        )
    }

    #[test]
    fn digits_weight_sign_and_scale_as_numeric_send_writes_them() {
        // SELECT numeric_send('…'::numeric) in PostgreSQL 15, read back as fields.
        assert_eq!(fields("0"), (vec![], 0, 0, 0));
        assert_eq!(fields("0.000"), (vec![], 0, 0, 3), "a zero keeps its scale");
        assert_eq!(fields("-0.00"), (vec![], 0, 0, 2), "no negative zero");
        assert_eq!(fields("1"), (vec![1], 0, 0, 0));
        assert_eq!(fields("1.50"), (vec![1, 5000], 0, 0, 2));
        assert_eq!(fields("12345.6789"), (vec![1, 2345, 6789], 1, 0, 4));
        assert_eq!(
            fields("10000"),
            (vec![1], 1, 0, 0),
            "trailing zero digits dropped"
        );
        assert_eq!(fields("0.000000007"), (vec![7000], -3, 0, 9));
        assert_eq!(fields("0.0001"), (vec![1], -1, 0, 4));
        assert_eq!(fields("-42.1"), (vec![42, 1000], 0, NEGATIVE, 1));
        assert_eq!(
            fields("79228162514264337593543950335"),
            (vec![7, 9228, 1625, 1426, 4337, 5935, 4395, 335], 7, 0, 0),
            "Decimal::MAX"
        );
        assert_eq!(
            fields("0.0000000000000000000000000001"),
            (vec![1], -7, 0, 28),
            "the smallest scale-28 value"
        );
    }
}
