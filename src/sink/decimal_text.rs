//! A decimal's text, as rust_decimal writes it (`to_string`, and its serde string), without
//! its division of a 96-bit number by ten for each digit (≈ 1,000 instructions for a cost):
//! a mantissa that fits 64 bits — every realistic amount — is written from a `u64`.

use rust_decimal::Decimal;

/// The longest text: a sign, 29 digits, a point and a leading zero.
const MAX: usize = 32;

/// `value`'s text, exactly as `value.to_string()`, in a buffer on the stack.
pub(crate) struct DecimalText {
    buf: [u8; MAX],
    start: usize,
}

impl DecimalText {
    /// Writes `value`.
    pub(crate) fn new(value: &Decimal) -> Self {
        let mut text = DecimalText {
            buf: [0; MAX],
            start: MAX,
        };
        let scale = value.scale() as usize;
        let Ok(mut mantissa) = u64::try_from(value.mantissa().unsigned_abs()) else {
            // Rare: through rust_decimal itself (it is never longer than the buffer).
            let s = value.to_string();
            text.start = MAX - s.len();
            text.buf[text.start..].copy_from_slice(s.as_bytes());
            return text;
        };
        // Digits from the last: the fraction (zero-padded to the scale), the point, the whole
        // part ("0" when there is none); "0" alone for a zero of scale 0.
        let mut written = 0;
        while mantissa != 0 || written < scale {
            if written == scale && scale > 0 {
                text.push(b'.');
            }
            text.push(b'0' + (mantissa % 10) as u8);
            mantissa /= 10;
            written += 1;
        }
        if written == scale {
            if scale > 0 {
                text.push(b'.');
            }
            text.push(b'0');
        }
        if value.is_sign_negative() {
            text.push(b'-');
        }
        text
    }

    fn push(&mut self, byte: u8) {
        self.start -= 1;
        self.buf[self.start] = byte;
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits, `.` and `-` were written, or rust_decimal's own text.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(value: Decimal) {
        assert_eq!(
            DecimalText::new(&value).as_str(),
            value.to_string(),
            "{value:?}"
        );
    }

    #[test]
    fn edges_read_as_rust_decimal_writes_them() {
        for (m, scale) in [
            (0i64, 0u32),
            (0, 3),
            (5, 3),
            (-5, 3),
            (1234, 2),
            (7, 0),
            (-7, 0),
        ] {
            same(Decimal::new(m, scale));
        }
        same(Decimal::new(i64::MAX, 28));
        same(Decimal::new(i64::MIN, 5));
        same(Decimal::MAX);
        same(Decimal::MIN);
        same(-Decimal::new(0, 4));
    }

    proptest! {
        #[test]
        fn every_decimal_reads_as_rust_decimal_writes_it(
            lo in any::<u32>(),
            mid in any::<u32>(),
            hi in prop_oneof![Just(0u32), any::<u32>()],
            negative in any::<bool>(),
            scale in 0u32..=28,
        ) {
            same(Decimal::from_parts(lo, mid, hi, negative, scale));
        }
    }
}
