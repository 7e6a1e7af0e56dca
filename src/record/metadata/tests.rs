use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{Metadata, PRICE_TABLE};

fn table() -> Arc<Value> {
    Arc::new(json!({"source": "embedded: LiteLLM 1.110.2", "date": "2026-12-01"}))
}

/// Keys around the shared one in byte order, and the shared key itself.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(PRICE_TABLE.to_owned()),
        Just("a".to_owned()),
        Just("price".to_owned()),
        Just("price_tablf".to_owned()),
        Just("price_table_".to_owned()),
        Just("request_id".to_owned()),
        Just("z".to_owned()),
        "[a-z_]{0,12}",
    ]
}

fn map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key(), any::<u8>()), 0..8)
        .prop_map(|entries| entries.into_iter().map(|(k, n)| (k, json!(n))).collect())
}

/// What a `Metadata` must look like from outside: the map with the shared entry copied in.
fn expected(own: &Map<String, Value>, shared: bool) -> Map<String, Value> {
    let mut want = own.clone();
    if shared {
        want.insert(PRICE_TABLE.to_owned(), (*table()).clone());
    }
    want
}

fn metadata(own: &Map<String, Value>, shared: bool) -> Metadata {
    let mut m = Metadata::from(own.clone());
    if shared {
        m.share_price_table(table());
        // An entry inserted into the map itself afterwards is shadowed by the shared one.
        if own.contains_key(PRICE_TABLE) {
            m.map.insert(PRICE_TABLE.to_owned(), json!("shadowed"));
        }
    }
    m
}

proptest! {
    /// Every way of reading a `Metadata` sees the map with the shared entry in it.
    #[test]
    fn reads_as_the_map_with_the_shared_entry(own in map(), shared in any::<bool>()) {
        let m = metadata(&own, shared);
        let want = expected(&own, shared);
        prop_assert_eq!(serde_json::to_string(&m).unwrap(), serde_json::to_string(&want).unwrap());
        prop_assert_eq!(m.len(), want.len());
        prop_assert_eq!(m.is_empty(), want.is_empty());
        let entries: Vec<(&str, &Value)> = m.iter().collect();
        let want_entries: Vec<(&str, &Value)> = want.iter().map(|(k, v)| (k.as_str(), v)).collect();
        prop_assert_eq!(entries, want_entries);
        prop_assert!(m.keys().eq(want.keys().map(String::as_str)));
        prop_assert!(m.values().eq(want.values()));
        for k in want.keys().map(String::as_str).chain(["absent", PRICE_TABLE]) {
            prop_assert_eq!(m.get(k), want.get(k));
            prop_assert_eq!(m.get_key_value(k), want.get_key_value(k).map(|(k, v)| (k.as_str(), v)));
            prop_assert_eq!(m.contains_key(k), want.contains_key(k));
        }
        prop_assert_eq!(&m.to_map(), &want);
        // Serialised and read back: the same entries, equal as metadata.
        let back: Metadata = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back, Metadata::from(want));
    }

    /// Changing an entry by key changes what every reader sees, shared or not.
    #[test]
    fn changes_by_key_act_on_the_shared_entry(own in map(), shared in any::<bool>(), k in key()) {
        let mut want = expected(&own, shared);
        let mut m = metadata(&own, shared);
        prop_assert_eq!(m.remove(&k), want.remove(&k));
        prop_assert_eq!(m.to_map(), want.clone());

        let (mut want, mut m) = (expected(&own, shared), metadata(&own, shared));
        prop_assert_eq!(m.insert(k.clone(), json!("new")), want.insert(k.clone(), json!("new")));
        prop_assert_eq!(m.to_map(), want.clone());

        let (mut want, mut m) = (expected(&own, shared), metadata(&own, shared));
        if let (Some(a), Some(b)) = (m.get_mut(&k), want.get_mut(&k)) {
            *a = json!(null);
            *b = json!(null);
        }
        prop_assert_eq!(m.to_map(), want.clone());

        let (mut want, mut m) = (expected(&own, shared), metadata(&own, shared));
        *m.entry(k.clone()).or_insert(json!(1)) = json!(2);
        *want.entry(k.clone()).or_insert(json!(1)) = json!(2);
        prop_assert_eq!(m.to_map(), want);
    }

    /// The map's own methods reached through `DerefMut` change the whole object, the shared
    /// entry too; `append` as well.
    #[test]
    fn changes_through_the_map_act_on_the_shared_entry(
        own in map(), shared in any::<bool>(), k in key(), other in map(),
    ) {
        let (mut want, mut m) = (expected(&own, shared), metadata(&own, shared));
        for (_, v) in m.iter_mut() {
            *v = json!("changed");
        }
        for (_, v) in want.iter_mut() {
            *v = json!("changed");
        }
        prop_assert_eq!(m.to_map(), want.clone());
        prop_assert_eq!(m.len(), want.len());

        let (mut want, mut m) = (expected(&own, shared), metadata(&own, shared));
        m.values_mut().for_each(|v| *v = json!(0));
        want.values_mut().for_each(|v| *v = json!(0));
        prop_assert_eq!(m.to_map(), want.clone());

        let (mut want, mut m) = (expected(&own, shared), metadata(&own, shared));
        m.retain(|key, _| *key != k);
        want.retain(|key, _| *key != k);
        prop_assert_eq!(m.to_map(), want.clone());
        prop_assert_eq!(m.get(&k), None);

        let (_, mut m) = (expected(&own, shared), metadata(&own, shared));
        m.clear();
        prop_assert!(m.is_empty());
        prop_assert_eq!(serde_json::to_string(&m).unwrap(), "{}");

        let (mut want, mut m) = (expected(&own, shared), metadata(&own, shared));
        let (mut a, mut b) = (other.clone(), other.clone());
        m.append(&mut a);
        want.append(&mut b);
        prop_assert!(a.is_empty());
        prop_assert_eq!(m.to_map(), want.clone());
        prop_assert_eq!(m.get(PRICE_TABLE), want.get(PRICE_TABLE));
    }
}

#[test]
fn appending_without_the_shared_key_keeps_it_shared() {
    let value = table();
    let mut m = Metadata::new();
    m.share_price_table(value.clone());
    m.append(&mut Map::from_iter([("notes".to_owned(), json!(1))]));
    assert!(Arc::ptr_eq(m.price_table.as_ref().unwrap(), &value));
    assert_eq!(m.len(), 2);
}

#[test]
fn the_shared_entry_is_the_tables_own_value() {
    let value = table();
    let mut m = Metadata::new();
    m.share_price_table(value.clone());
    assert!(Arc::ptr_eq(m.price_table.as_ref().unwrap(), &value));
    assert_eq!(m["price_table"]["source"], "embedded: LiteLLM 1.110.2");
    // Serialised as the object's own member, keys in order.
    m.insert("request_id".into(), json!("r"));
    m.insert("pricing".into(), json!("x"));
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"price_table":{"date":"2026-12-01","source":"embedded: LiteLLM 1.110.2"},"pricing":"x","request_id":"r"}"#
    );
    // Changing it in place copies it; the table's value stays as it was.
    m.get_mut("price_table").unwrap()["date"] = json!(null);
    assert_eq!(value["date"], "2026-12-01");
    assert!(m["price_table"]["date"].is_null());
}

#[test]
#[should_panic(expected = "no metadata entry")]
fn indexing_a_missing_key_panics_as_a_map_does() {
    let _ = &Metadata::new()["absent"];
}
