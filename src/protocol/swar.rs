//! Eight or sixteen bytes at a time in one register (SWAR): the word readers and the byte
//! test that the scanners of this module and the strip's filter share.

/// One bit in every byte: the bytes' lowest and highest bits.
pub(super) const LO: u64 = 0x0101_0101_0101_0101;
pub(super) const HI: u64 = 0x8080_8080_8080_8080;

/// The first eight bytes of `bytes` as a little-endian word (`bytes` holds at least eight).
#[inline]
pub(crate) fn u64_of(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// The first sixteen bytes of `bytes` as a little-endian word (`bytes` holds at least sixteen).
#[inline]
pub(super) fn u128_of(bytes: &[u8]) -> u128 {
    let mut word = [0u8; 16];
    word.copy_from_slice(&bytes[..16]);
    u128::from_le_bytes(word)
}

/// The bytes of `word` equal to `byte`, as their high bits: zero when there is none, and the
/// lowest set bit marks the first one exactly (bits above it may be false positives from the
/// borrow, so only the lowest is to be used).
#[inline]
pub(crate) fn byte_matches(word: u64, byte: u8) -> u64 {
    let x = word ^ (LO * u64::from(byte));
    x.wrapping_sub(LO) & !x & HI
}
