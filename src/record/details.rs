//! [`Details`]: a record's small maps by part name — [`CostDetails`], the exact amount of
//! each priced part of its cost, and [`UsageCounts`], the counts read beyond its token
//! fields.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Index;

use rust_decimal::Decimal;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

/// A record's `cost_details`: USD per priced part (`input`, `cache_read`, `output`, …,
/// `computed`), in the order of the part names — a JSON object of exact decimal strings.
/// See [`Details`].
///
/// ```
/// use rust_decimal::Decimal;
/// use tower_activity::CostDetails;
///
/// let d: CostDetails = [("output", Decimal::new(2, 6)), ("input", Decimal::new(1, 6))]
///     .into_iter()
///     .collect();
/// assert_eq!(d["input"], Decimal::new(1, 6));
/// assert_eq!(d.keys().collect::<Vec<_>>(), ["input", "output"]);
/// assert_eq!(serde_json::to_string(&d)?, r#"{"input":"0.000001","output":"0.000002"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub type CostDetails = Details<Decimal>;

/// A record's `usage_details`: the counts read beyond its token fields (audio, image and text
/// tokens per direction, cache writes by lifetime, web searches …) by name — a JSON object of
/// whole numbers. See [`Details`].
///
/// ```
/// use tower_activity::UsageCounts;
///
/// let d: UsageCounts = [("output_audio_tokens", 7), ("input_audio_tokens", 0)].into_iter().collect();
/// assert_eq!(d.get("output_audio_tokens"), Some(&7));
/// assert_eq!(serde_json::to_string(&d)?, r#"{"input_audio_tokens":0,"output_audio_tokens":7}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub type UsageCounts = Details<u64>;

/// A small map from part names to values: what [`CostDetails`] and [`UsageCounts`] are.
///
/// A record has a handful of parts (at most sixteen), kept sorted in one vector instead of a
/// B-tree, whose node is larger than the record's other fields together and was a twentieth
/// of the layer's cost per JSON request to allocate and free. Up to four parts (most records)
/// are kept in the record itself, with no allocation at all. The layer's keys are its fixed
/// part names, borrowed; a map read back from storage owns its keys. It reads as a map
/// (`get`, indexing, `iter` in key order), serialises as a JSON object in the order a
/// `BTreeMap` gives, and a key inserted twice keeps the last value, as a map does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details<V> {
    /// Sorted by key (as `str`s compare), each key once.
    parts: SmallVec<[(Cow<'static, str>, V); INLINE]>,
}

/// How many parts are kept without an allocation.
const INLINE: usize = 4;

impl<V> Default for Details<V> {
    fn default() -> Self {
        Details {
            parts: SmallVec::new(),
        }
    }
}

impl<V> Details<V> {
    /// An empty map.
    pub fn new() -> Self {
        Details::default()
    }

    /// An empty map with room for `n` parts.
    pub fn with_capacity(n: usize) -> Self {
        Details {
            parts: SmallVec::with_capacity(n),
        }
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.parts.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    /// Sets `key` to `amount`, returning the value it replaces.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, amount: V) -> Option<V> {
        let key = key.into();
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.parts[i].1, amount)),
            Err(i) => {
                self.parts.insert(i, (key, amount));
                None
            }
        }
    }

    /// [`insert`](Self::insert) of a part that comes after every part there (what pricing
    /// produces, in the order of the part names): appended after one comparison instead of
    /// searched for; inserted where it belongs otherwise.
    pub(crate) fn push_in_order(&mut self, key: &'static str, amount: V) {
        match self.parts.last() {
            Some((last, _)) if **last >= *key => {
                self.insert(key, amount);
            }
            _ => self.parts.push((Cow::Borrowed(key), amount)),
        }
    }

    /// The value of part `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.position(key).ok().map(|i| &self.parts[i].1)
    }

    /// Whether there is a part `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Removes part `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.position(key).ok().map(|i| self.parts.remove(i).1)
    }

    /// The number of parts.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether there are no parts.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Every part and its value, in the order of the keys.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &V)> + '_ {
        self.parts.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The part names, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.parts.iter().map(|(k, _)| k.as_ref())
    }

    /// Whether every key is borrowed (the layer's own names), none copied.
    #[cfg(test)]
    pub(crate) fn borrows_every_key(&self) -> bool {
        self.parts
            .iter()
            .all(|(k, _)| matches!(k, Cow::Borrowed(_)))
    }

    /// The values, in the order of their keys.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + '_ {
        self.parts.iter().map(|(_, v)| v)
    }
}

/// The value of a part; panics when there is none, as a map's indexing does.
impl<V> Index<&str> for Details<V> {
    type Output = V;

    fn index(&self, key: &str) -> &V {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no part {key:?}"),
        }
    }
}

impl<K: Into<Cow<'static, str>>, V> FromIterator<(K, V)> for Details<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut details = Details::with_capacity(iter.size_hint().0);
        for (key, amount) in iter {
            details.insert(key, amount);
        }
        details
    }
}

impl<'a, V> IntoIterator for &'a Details<V> {
    type Item = (&'a str, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Cow<'static, str>, V)>,
        fn(&'a (Cow<'static, str>, V)) -> (&'a str, &'a V),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.parts.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

/// As a JSON object, its keys in order.
impl<V: Serialize> Serialize for Details<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, amount) in self.iter() {
            map.serialize_entry(key, amount)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Details<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Parts<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for Parts<V> {
            type Value = Details<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of parts by name")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Details<V>, A::Error> {
                let mut details = Details::with_capacity(map.size_hint().unwrap_or(0).min(16));
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    details.insert(key, value);
                }
                Ok(details)
            }
        }

        deserializer.deserialize_map(Parts(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the order of insertion, and with keys inserted twice, it reads and
        /// serialises as the `BTreeMap` of the same insertions, and reads back equal.
        #[test]
        fn behaves_as_a_btree_map(
            entries in prop::collection::vec(("[a-d_]{0,3}", any::<i64>(), 0u32..10), 0..12),
        ) {
            let mut want = BTreeMap::new();
            let mut got = CostDetails::new();
            for (key, n, scale) in &entries {
                let amount = Decimal::new(*n, *scale);
                prop_assert_eq!(got.insert(key.clone(), amount), want.insert(key.clone(), amount));
            }
            prop_assert_eq!(got.len(), want.len());
            prop_assert!(got.iter().eq(want.iter().map(|(k, v)| (k.as_str(), v))));
            for key in want.keys().map(String::as_str).chain(["", "zz"]) {
                prop_assert_eq!(got.get(key), want.get(key));
                prop_assert_eq!(got.contains_key(key), want.contains_key(key));
            }
            let json = serde_json::to_string(&got).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&want).unwrap());
            let back: CostDetails = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &got);
            let collected: CostDetails = entries
                .iter()
                .map(|(k, n, s)| (k.clone(), Decimal::new(*n, *s)))
                .collect();
            prop_assert_eq!(&collected, &got);
            if let Some(key) = want.keys().next().cloned() {
                prop_assert_eq!(got.remove(&key), want.remove(&key));
                prop_assert!(got.keys().eq(want.keys().map(String::as_str)));
            }
        }
    }

    proptest! {
        /// Parts pushed in order, out of order or twice end as inserted ones do.
        #[test]
        fn pushing_in_order_is_inserting(picks in prop::collection::vec((0usize..6, any::<i32>()), 0..10)) {
            const KEYS: [&str; 6] = ["cache_read", "computed", "input", "output", "reasoning", "web_search"];
            let (mut pushed, mut inserted) = (CostDetails::new(), CostDetails::new());
            for (i, n) in picks {
                pushed.push_in_order(KEYS[i], Decimal::from(n));
                inserted.insert(KEYS[i], Decimal::from(n));
            }
            prop_assert_eq!(pushed, inserted);
        }
    }

    #[test]
    fn a_json_object_with_a_key_twice_keeps_the_last_amount() {
        let d: CostDetails =
            serde_json::from_str(r#"{"output":"1","input":"2","output":"3"}"#).unwrap();
        assert_eq!(d.keys().collect::<Vec<_>>(), ["input", "output"]);
        assert_eq!(d["output"], Decimal::from(3));
        assert!(serde_json::from_str::<CostDetails>(r#"["input"]"#).is_err());
    }

    #[test]
    #[should_panic(expected = "no part")]
    fn indexing_a_missing_part_panics_as_a_map_does() {
        let _ = CostDetails::new()["input"];
    }
}
