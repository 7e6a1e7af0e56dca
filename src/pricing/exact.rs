//! Exact decimal arithmetic for costs: products and sums that never round, and the shortest
//! form of an amount — with the common case (a non-negative mantissa that fits in 64 bits) in
//! plain `u64` arithmetic, and `rust_decimal`'s 96-bit routines for the rest.
//!
//! A record's price is a few tokens times a price of a few digits, so its parts and their sum
//! fit in 64 bits; `rust_decimal`'s general routines cost ≈ 200 instructions a sum and
//! ≈ 130 a normalisation (its 96-bit division by ten per trailing zero).

use rust_decimal::Decimal;

/// The mantissa of `d` as a `u64`, when it is non-negative and fits.
fn small(d: Decimal) -> Option<u64> {
    u64::try_from(d.mantissa()).ok()
}

/// The decimal `m · 10^-scale` (`scale` ≤ 28, as every scale taken from a `Decimal` is).
fn from_small(m: u64, scale: u32) -> Decimal {
    Decimal::from_parts(m as u32, (m >> 32) as u32, 0, false, scale)
}

/// `tokens · price`, `None` if `rust_decimal` would have to drop digits (it rounds silently
/// when a product needs more than 96 bits; a cost must never be rounded).
pub(super) fn exact_mul(tokens: u64, price: Decimal) -> Option<Decimal> {
    // A zero product loses its scale (`0.000000 · 1` is `0`), which is no rounding.
    if tokens == 0 || price.is_zero() {
        return Some(Decimal::ZERO);
    }
    if let Some(product) = small(price).and_then(|m| m.checked_mul(tokens)) {
        return Some(from_small(product, price.scale()));
    }
    let product = Decimal::from(tokens).checked_mul(price)?;
    (product.scale() == price.scale()).then_some(product)
}

/// `a + b`, `None` if the sum would lose digits (same reason as [`exact_mul`]).
pub(super) fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    if a.is_zero() || b.is_zero() {
        return Some(a + b);
    }
    let scale = a.scale().max(b.scale());
    let up = |d: Decimal| small(d)?.checked_mul(10u64.checked_pow(scale - d.scale())?);
    if let Some(sum) = up(a).and_then(|x| x.checked_add(up(b)?)) {
        return Some(from_small(sum, scale));
    }
    let sum = a.checked_add(b)?;
    (sum.scale() == scale).then_some(sum)
}

/// `d` without trailing zeros after the point, as [`Decimal::normalize`].
pub(super) fn normalized(d: Decimal) -> Decimal {
    let Some(mut m) = small(d) else {
        return d.normalize();
    };
    if m == 0 {
        // `normalize` gives a zero of scale 0 and no sign.
        return Decimal::ZERO;
    }
    let mut scale = d.scale();
    while scale > 0 && m % 10 == 0 {
        m /= 10;
        scale -= 1;
    }
    from_small(m, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decimals around the 64-bit boundary and beyond, of every scale, either sign, zeros.
    fn decimal() -> impl Strategy<Value = Decimal> {
        let mantissa = prop_oneof![
            0u128..1_000,
            any::<u64>().prop_map(u128::from),
            (u128::from(u64::MAX) - 1_000)..(u128::from(u64::MAX) + 1_000),
            0u128..(1u128 << 96),
        ];
        let trailing = prop_oneof![Just(0u32), 1u32..12];
        (mantissa, trailing, 0u32..=28, any::<bool>()).prop_map(|(m, zeros, scale, negative)| {
            let m = m
                .checked_mul(10u128.pow(zeros))
                .filter(|m| *m < 1u128 << 96)
                .unwrap_or(m);
            let d = Decimal::from_i128_with_scale(m as i128, scale);
            if negative { -d } else { d }
        })
    }

    /// The same number, scale and sign.
    fn same(a: Decimal, b: Decimal) -> bool {
        a == b && a.scale() == b.scale() && a.is_sign_negative() == b.is_sign_negative()
    }

    proptest! {
        #[test]
        fn normalized_is_normalize(d in decimal()) {
            let (got, want) = (normalized(d), d.normalize());
            prop_assert!(same(got, want), "{d:?}: {got:?} vs {want:?}");
        }

        #[test]
        fn exact_add_is_the_decimal_sum_or_none(a in decimal(), b in decimal()) {
            let want = if a.is_zero() || b.is_zero() {
                Some(a + b)
            } else {
                a.checked_add(b).filter(|s| s.scale() == a.scale().max(b.scale()))
            };
            let got = exact_add(a, b);
            prop_assert_eq!(got.is_some(), want.is_some(), "{:?} + {:?}", a, b);
            if let (Some(got), Some(want)) = (got, want) {
                prop_assert!(same(got, want), "{a:?} + {b:?}: {got:?} vs {want:?}");
            }
        }

        #[test]
        fn exact_mul_is_the_decimal_product_or_none(
            tokens in prop_oneof![0u64..1_000_000, any::<u64>()], price in decimal(),
        ) {
            let want = if tokens == 0 || price.is_zero() {
                Some(Decimal::ZERO)
            } else {
                Decimal::from(tokens).checked_mul(price).filter(|p| p.scale() == price.scale())
            };
            let got = exact_mul(tokens, price);
            prop_assert_eq!(got.is_some(), want.is_some(), "{} · {:?}", tokens, price);
            if let (Some(got), Some(want)) = (got, want) {
                prop_assert!(same(got, want), "{tokens} · {price:?}: {got:?} vs {want:?}");
            }
        }
    }
}
