//! [`Metadata`]: a record's `metadata` object, with the price table's name shared between the
//! records priced from one table instead of copied into each.

use std::cmp::Ordering;
use std::iter::Peekable;
use std::ops::{Deref, DerefMut, Index};
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::map::{Entry, Iter as MapIter};
use serde_json::{Map, Value};

/// The key of the entry a price table shares with the records it prices.
const PRICE_TABLE: &str = "price_table";

/// A record's `metadata`: a JSON object (the application's tags, the provider's `request_id`,
/// endpoint-specific notes, the price table's name).
///
/// It reads and writes as a [`serde_json::Map`] (it dereferences to one, and serialises and
/// deserialises as one object), with one difference of representation: the
/// `price_table` entry of a priced record (`{"source", "date"}`) is the price table's own
/// value, shared by every record priced from that table, instead of a copy per record
/// (copying and freeing it was a fifth of the layer's cost per JSON request). Every way of
/// reading an entry — [`get`](Self::get), indexing, [`iter`](Self::iter), [`len`](Self::len),
/// equality, serialisation, [`keys`](Self::keys), [`values`](Self::values) — sees the
/// shared entry where the map would hold it. Every way of changing the object — by key
/// ([`insert`](Self::insert), [`remove`](Self::remove), [`entry`](Self::entry),
/// [`get_mut`](Self::get_mut), [`append`](Self::append)) or through `DerefMut` (`iter_mut`,
/// `values_mut`, `retain`, `clear`, `extend` …) — first makes the shared entry the map's own
/// (a copy), so it changes the one object the record serialises as. Only an explicit
/// `&*metadata` (or a `&Map` reached by deref coercion) is the map alone, without the shared
/// entry; [`to_map`](Self::to_map) gives the whole object as a map.
///
/// ```
/// use serde_json::json;
/// use tower_activity::{ActivityRecord, RecordKind};
///
/// let mut r = ActivityRecord::new(RecordKind::Request);
/// r.metadata.insert("team".into(), json!("search"));
/// assert_eq!(r.metadata["team"], "search");
/// assert_eq!(serde_json::to_value(&r.metadata)?, json!({"team": "search"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    map: Map<String, Value>,
    /// The `price_table` entry when it is shared; it takes the place of the map's own.
    price_table: Option<Arc<Value>>,
}

impl Metadata {
    /// An empty object.
    pub fn new() -> Self {
        Metadata::default()
    }

    /// Sets `price_table` to a value shared with the table (no copy).
    pub(crate) fn share_price_table(&mut self, value: Arc<Value>) {
        self.map.remove(PRICE_TABLE);
        self.price_table = Some(value);
    }

    /// Whether `price_table` is the table's shared value (not a copy).
    #[cfg(test)]
    pub(crate) fn shares_price_table(&self) -> bool {
        self.price_table.is_some()
    }

    /// Makes a shared `price_table` the map's own (a copy), before it is changed in place.
    fn own(&mut self, key: &str) {
        if key == PRICE_TABLE {
            if let Some(shared) = self.price_table.take() {
                let value = Arc::try_unwrap(shared).unwrap_or_else(|v| (*v).clone());
                self.map.insert(PRICE_TABLE.to_owned(), value);
            }
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.price_table {
            Some(shared) if key == PRICE_TABLE => Some(shared),
            _ => self.map.get(key),
        }
    }

    /// The value under `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.own(key);
        self.map.get_mut(key)
    }

    /// Whether there is a value under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.own(&key);
        self.map.insert(key, value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.own(key);
        self.map.remove(key)
    }

    /// The entry of `key`, to insert or change in place.
    pub fn entry(&mut self, key: impl Into<String>) -> Entry<'_> {
        let key = key.into();
        self.own(&key);
        self.map.entry(key)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        let shadowed = self.price_table.is_some() && self.map.contains_key(PRICE_TABLE);
        self.map.len() + usize::from(self.price_table.is_some()) - usize::from(shadowed)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every key, in order (as serialised).
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(key, _)| key)
    }

    /// Every value, in the order of the keys (as serialised).
    pub fn values(&self) -> impl Iterator<Item = &Value> + '_ {
        self.iter().map(|(_, value)| value)
    }

    /// The key and the value under `key`.
    pub fn get_key_value(&self, key: &str) -> Option<(&str, &Value)> {
        match &self.price_table {
            Some(shared) if key == PRICE_TABLE => Some((PRICE_TABLE, shared)),
            _ => self.map.get_key_value(key).map(|(k, v)| (k.as_str(), v)),
        }
    }

    /// Moves every entry of `other` into this object (replacing its values of the same keys),
    /// leaving `other` empty. The shared entry stays shared unless `other` has one.
    pub fn append(&mut self, other: &mut Map<String, Value>) {
        if other.contains_key(PRICE_TABLE) {
            self.own(PRICE_TABLE);
        }
        self.map.append(other);
    }

    /// Every entry, in the order of the keys (as serialised).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            map: self.map.iter().peekable(),
            shared: self.price_table.as_deref(),
        }
    }

    /// The whole object as a map (the shared entry copied into it).
    pub fn to_map(&self) -> Map<String, Value> {
        self.clone().into_map()
    }

    /// The whole object as a map (the shared entry copied into it).
    pub fn into_map(mut self) -> Map<String, Value> {
        self.own(PRICE_TABLE);
        self.map
    }
}

/// The map's own entries (the shared `price_table` is not among them: see [`Metadata`]).
impl Deref for Metadata {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        &self.map
    }
}

/// The whole object as a map, to change: a shared `price_table` is first made the map's own
/// (a copy), so `iter_mut`, `values_mut`, `retain`, `clear` … reach it too (see [`Metadata`]).
impl DerefMut for Metadata {
    fn deref_mut(&mut self) -> &mut Map<String, Value> {
        self.own(PRICE_TABLE);
        &mut self.map
    }
}

/// The value under a key; panics when there is none, as [`Map`]'s indexing does.
impl Index<&str> for Metadata {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no metadata entry {key:?}"),
        }
    }
}

/// Equal when they hold the same entries, shared or not.
impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl From<Map<String, Value>> for Metadata {
    fn from(map: Map<String, Value>) -> Self {
        Metadata {
            map,
            price_table: None,
        }
    }
}

impl From<Metadata> for Map<String, Value> {
    fn from(metadata: Metadata) -> Self {
        metadata.into_map()
    }
}

impl From<Metadata> for Value {
    fn from(metadata: Metadata) -> Self {
        Value::Object(metadata.into_map())
    }
}

impl FromIterator<(String, Value)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Metadata::from(Map::from_iter(iter))
    }
}

impl<'a> IntoIterator for &'a Metadata {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// As one JSON object, its keys in order: exactly what the map with the entry copied into
/// it would give.
impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Metadata::from)
    }
}

/// The entries of a [`Metadata`], in the order of their keys.
#[derive(Debug)]
pub struct Iter<'a> {
    map: Peekable<MapIter<'a>>,
    shared: Option<&'a Value>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(shared) = self.shared else {
                return self.map.next().map(|(k, v)| (k.as_str(), v));
            };
            let order = match self.map.peek() {
                Some((key, _)) => key.as_str().cmp(PRICE_TABLE),
                None => Ordering::Greater,
            };
            match order {
                Ordering::Less => return self.map.next().map(|(k, v)| (k.as_str(), v)),
                // The map's own entry under the shared key is shadowed.
                Ordering::Equal => {
                    self.map.next();
                }
                Ordering::Greater => {
                    self.shared = None;
                    return Some((PRICE_TABLE, shared));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
