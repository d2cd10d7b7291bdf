//! 加密字段 record-data fields kept encrypted at rest.
//!
//! A plugin's manifest marks fields [`Sensitivity::Sensitive`](jiayuan_domain::Sensitivity); the
//! host registers their names per plugin ([`Store::seal_record_fields`]). From then on the store
//! encrypts those fields' values inside `data_json` (records and their events) on every write and
//! decrypts them on every read, so the engine, the plugins and the API see plain data and the
//! database holds none. An indexed key on such a field stores its blind index instead of the
//! value, and a key lookup ([`RecordFilter::key`](crate::RecordFilter)) is translated the same way,
//! so exact lookups keep working.
//!
//! A sealed value is the JSON string `enc:v1:…`: XChaCha20-Poly1305 over `field ‖ 0x00 ‖ value
//! as JSON`, associated data `records.data_json`, so a value moved to another field does not
//! decrypt. Values written before a field was sealed stay readable as they are.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use serde_json::{Map, Value};

use crate::error::StoreError;
use crate::records::{StoredEvent, StoredRecord, WriteBatch};
use crate::store::Store;

/// The associated data of every sealed record field.
const COLUMN: &str = "records.data_json";

/// The prefix that marks a sealed value.
const MARK: &str = "enc:";

/// Field names sealed per plugin.
#[derive(Debug, Default)]
pub(crate) struct SealedFields(RwLock<HashMap<String, HashSet<String>>>);

impl SealedFields {
    fn of(&self, plugin: &str) -> Option<HashSet<String>> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        map.get(plugin).filter(|f| !f.is_empty()).cloned()
    }
}

impl Store {
    /// Keeps the values of these record-data fields of `plugin` encrypted at rest from now on
    /// (the host calls this with each plugin's `Sensitive` fields when it loads the plugin).
    pub fn seal_record_fields(&self, plugin: &str, fields: impl IntoIterator<Item = String>) {
        let mut map = self.sealed.0.write().unwrap_or_else(|p| p.into_inner());
        map.entry(plugin.to_owned()).or_default().extend(fields);
    }

    /// Whether `field` of `plugin` is sealed.
    pub(crate) fn is_sealed(&self, plugin: &str, field: &str) -> bool {
        self.sealed.0.read().unwrap_or_else(|p| p.into_inner()).get(plugin).is_some_and(|f| f.contains(field))
    }

    /// The stored form of an indexed key's value on a sealed field: its blind index.
    pub(crate) fn sealed_key(&self, plugin: &str, field: &str, value: &str) -> String {
        self.keys.blind_index(&format!("{COLUMN}:{plugin}:{field}"), value)
    }

    /// Encrypts the sealed fields of every create and update of `batch`, and blind-indexes
    /// their keys.
    pub(crate) fn seal_batch(&self, batch: &mut WriteBatch) -> Result<(), StoreError> {
        for c in &mut batch.creates {
            if let Some(fields) = self.sealed.of(&c.plugin) {
                c.data_json = self.seal_json(&fields, &c.data_json)?;
                for k in c.keys.iter_mut().filter(|k| fields.contains(&k.field)) {
                    k.value = self.sealed_key(&c.plugin, &k.field, &k.value);
                }
            }
        }
        for u in &mut batch.updates {
            if let Some(fields) = self.sealed.of(&u.plugin) {
                u.data_json = self.seal_json(&fields, &u.data_json)?;
                for k in u.keys.iter_mut().filter(|k| fields.contains(&k.field)) {
                    k.value = self.sealed_key(&u.plugin, &k.field, &k.value);
                }
            }
        }
        Ok(())
    }

    fn seal_json(&self, fields: &HashSet<String>, data_json: &str) -> Result<String, StoreError> {
        let Ok(Value::Object(mut data)) = serde_json::from_str::<Value>(data_json) else {
            return Ok(data_json.to_owned());
        };
        for (name, value) in data.iter_mut().filter(|(name, v)| fields.contains(*name) && !v.is_null()) {
            let plain = format!("{name}\u{0}{value}");
            *value = Value::String(format!("{MARK}{}", self.keys.encrypt(COLUMN, &plain)?));
        }
        Ok(Value::Object(data).to_string())
    }

    fn unseal_json(&self, plugin: &str, data_json: String) -> Result<String, StoreError> {
        if !data_json.contains(MARK) || self.sealed.of(plugin).is_none() {
            return Ok(data_json);
        }
        let Ok(Value::Object(data)) = serde_json::from_str::<Value>(&data_json) else {
            return Ok(data_json);
        };
        let mut out = Map::with_capacity(data.len());
        for (name, value) in data {
            let value = match value.as_str().and_then(|s| s.strip_prefix(MARK)) {
                Some(sealed) if self.is_sealed(plugin, &name) => {
                    let plain = self.keys.decrypt(COLUMN, sealed)?;
                    let json = plain
                        .strip_prefix(name.as_str())
                        .and_then(|rest| rest.strip_prefix('\u{0}'))
                        .ok_or_else(|| StoreError::Corrupt {
                            what: COLUMN,
                            detail: format!("the sealed value of `{name}` belongs to another field"),
                        })?;
                    serde_json::from_str(json).map_err(|_| StoreError::Corrupt {
                        what: COLUMN,
                        detail: format!("the sealed value of `{name}` is not JSON"),
                    })?
                }
                _ => value,
            };
            out.insert(name, value);
        }
        Ok(Value::Object(out).to_string())
    }

    /// A record read from the database, with its sealed fields decrypted.
    pub(crate) fn unseal_record(&self, mut r: StoredRecord) -> Result<StoredRecord, StoreError> {
        r.data_json = self.unseal_json(&r.plugin, std::mem::take(&mut r.data_json))?;
        Ok(r)
    }

    /// An event of `plugin` read from the database, with its sealed fields decrypted.
    pub(crate) fn unseal_event(&self, plugin: &str, mut e: StoredEvent) -> Result<StoredEvent, StoreError> {
        e.data_json = self.unseal_json(plugin, std::mem::take(&mut e.data_json))?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use jiayuan_domain::{Place, Timestamp};

    use crate::records::{IndexKey, NewRecord, RecordFilter, RecordUpdate, WriteBatch};
    use crate::tests::store_with_estate;

    const CANARY: &str = "440303198001010038";

    #[tokio::test]
    async fn sealed_fields_are_ciphertext_in_the_database_and_plain_to_readers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, estate) = store_with_estate(&dir, 5000).await;
        store.seal_record_fields("keyp", ["id_number".to_owned(), "reason".to_owned()]);
        let data = serde_json::json!({"id_number": CANARY, "reason": {"code": 7}, "note": "plain"}).to_string();
        let create = NewRecord {
            plugin: "keyp".into(),
            kind: "person".into(),
            place: Place::Estate(estate),
            parent: None,
            state: "open".into(),
            data_json: data.clone(),
            keys: vec![IndexKey { field: "id_number".into(), value: CANARY.into(), unique: true }],
            refs: Vec::new(),
            occurred_at: Timestamp(1_000),
            backdated_reason: None,
            at: Timestamp(1_000),
            actor: "user:1".into(),
        };
        let id = store
            .write(WriteBatch { creates: vec![create.clone()], ..WriteBatch::default() })
            .await
            .expect("create")
            .created[0];

        // Readers see plain data; the database holds none of it (records, events or keys).
        let r = store.record("keyp", id).await.expect("read").expect("exists");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&r.data_json).expect("json"),
            serde_json::from_str::<serde_json::Value>(&data).expect("json")
        );
        let sql = "SELECT data_json AS t FROM records UNION ALL SELECT data_json FROM record_events \
                   UNION ALL SELECT value FROM record_keys";
        let rows = store.reader.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql)).await.expect("raw rows");
        let stored: Vec<String> = rows.iter().map(|r| r.try_get::<String>("", "t").expect("text")).collect();
        assert_eq!(stored.len(), 3, "record, event, key: {stored:?}");
        for text in &stored {
            assert!(!text.contains(CANARY) && !text.contains("\"code\":7"), "plain sealed data stored: {text}");
        }
        assert!(stored[0].contains("\"note\":\"plain\""), "unsealed fields stay plain: {}", stored[0]);
        assert!(format!("{:?}", store.events("keyp", id).await.expect("events")).contains(CANARY));

        // Exact lookup by the sealed key still works, and a duplicate is still refused.
        let by_key = RecordFilter {
            plugin: "keyp".into(),
            key: Some(("id_number".into(), CANARY.into())),
            ..RecordFilter::default()
        };
        assert_eq!(store.records(&by_key).await.expect("lookup").len(), 1);
        let twin = store.write(WriteBatch { creates: vec![create], ..WriteBatch::default() }).await;
        assert!(matches!(twin, Err(crate::StoreError::UniqueKey { .. })), "{twin:?}");

        // An update re-seals; a sealed value moved to another field does not decrypt.
        let update = RecordUpdate {
            plugin: "keyp".into(),
            id,
            expected_version: 1,
            action: "edit".into(),
            new_state: "open".into(),
            keys: Vec::new(),
            refs: Vec::new(),
            move_to: None,
            assignee: None,
            data_json: serde_json::json!({"id_number": CANARY, "reason": null}).to_string(),
            occurred_at: Timestamp(2_000),
            backdated_reason: None,
            at: Timestamp(2_000),
            actor: "user:1".into(),
        };
        store.write(WriteBatch { updates: vec![update], ..WriteBatch::default() }).await.expect("update");
        let raw = store
            .reader
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("SELECT data_json FROM records WHERE id = {}", id.0),
            ))
            .await
            .expect("raw")
            .expect("row");
        let stored: String = raw.try_get("", "data_json").expect("data_json");
        let mut moved: serde_json::Value = serde_json::from_str(&stored).expect("json");
        moved["note"] = moved["id_number"].clone();
        store.seal_record_fields("keyp", ["note".to_owned()]);
        let moved = moved.to_string().replace('\'', "''");
        store
            .writer
            .execute_unprepared(&format!("UPDATE records SET data_json = '{moved}' WHERE id = {}", id.0))
            .await
            .expect("hand edit");
        let e = store.record("keyp", id).await.expect_err("moved ciphertext");
        assert!(e.to_string().contains("another field"), "{e}");
    }
}
