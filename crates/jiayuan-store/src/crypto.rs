//! Field encryption at rest: [`FieldKeys`], the keys that encrypt sensitive registry columns
//! (identity-document numbers, phone numbers) and compute their blind indexes.
//!
//! One 32-byte *master key* (the operator's data key) yields two sub-keys, each
//! `HMAC-SHA256(master, label)` with its own domain-separation label:
//!
//! - the **encryption key** (`jiayuan/field-encryption/v1`): XChaCha20-Poly1305 with a random
//!   24-byte nonce from the operating system; the column name is the associated data, so a
//!   value copied into another column does not decrypt. Stored as text
//!   `v1:<base64(nonce ‖ ciphertext ‖ tag)>`.
//! - the **blind-index key** (`jiayuan/blind-index/v1`): `hex(HMAC-SHA256(key, column ‖ 0x00 ‖
//!   normalised value))`, equal for equal values in the same column, so exact lookups and
//!   uniqueness work without the plaintext in the database.
//!
//! Key material never appears in `Debug` output, logs or error messages, and is zeroized when
//! the last clone of the keys is dropped.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::StoreError;

/// Length of the master key and of each derived sub-key, in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Domain-separation label of the encryption sub-key.
const ENCRYPTION_LABEL: &[u8] = b"jiayuan/field-encryption/v1";
/// Domain-separation label of the blind-index sub-key.
const BLIND_INDEX_LABEL: &[u8] = b"jiayuan/blind-index/v1";
/// Prefix of every encrypted value (the format version).
const FORMAT_V1: &str = "v1:";
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// What the key check value is computed over (see [`FieldKeys::check_value`]).
const KEY_CHECK_COLUMN: &str = "store_meta.key_check";
const KEY_CHECK_LABEL: &str = "jiayuan data key check v1";

type HmacSha256 = Hmac<Sha256>;

/// Why a data key could not be used. Never contains the key or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is empty (after trimming whitespace).
    #[error("the data key is empty: expected 64 hexadecimal characters or base64 of 32 bytes")]
    Empty,
    /// The text is neither 64 hex characters nor valid base64.
    #[error(
        "the data key ({chars} characters) is neither 64 hexadecimal characters nor base64 text: \
         expected 32 random bytes, e.g. from `openssl rand -hex 32`"
    )]
    Encoding {
        /// How many characters the (trimmed) text has.
        chars: usize,
    },
    /// The text decodes, but not to 32 bytes.
    #[error("the data key decodes to {bytes} bytes, expected 32 (e.g. from `openssl rand -hex 32`)")]
    Length {
        /// How many bytes it decodes to.
        bytes: usize,
    },
    /// The operating system's random number generator failed.
    #[error("cannot generate a data key: the operating system's random number generator failed: {0}")]
    Random(String),
}

/// The secrets behind [`FieldKeys`], zeroized on drop (the cipher zeroizes its own key).
#[derive(Zeroize, ZeroizeOnDrop)]
struct Secrets {
    #[zeroize(skip)]
    cipher: XChaCha20Poly1305,
    index_key: [u8; MASTER_KEY_LEN],
}

/// The keys that encrypt sensitive columns and compute their blind indexes, derived from one
/// 32-byte master key.
///
/// Cheap to clone (the secrets are shared, and zeroized when the last clone is dropped).
/// `Debug` prints `FieldKeys(***)`. Two values are equal when they derive from the same master
/// key.
#[derive(Clone)]
pub struct FieldKeys {
    secrets: Arc<Secrets>,
    /// [`FieldKeys::check_value`], computed once (not secret).
    check: String,
}

impl FieldKeys {
    /// Derives the encryption and blind-index sub-keys from `master`.
    pub fn from_master(master: &[u8; MASTER_KEY_LEN]) -> FieldKeys {
        let encryption = Zeroizing::new(derive(master, ENCRYPTION_LABEL));
        let index_key = derive(master, BLIND_INDEX_LABEL);
        let cipher = XChaCha20Poly1305::new(encryption.as_slice().into());
        let secrets = Arc::new(Secrets { cipher, index_key });
        let check = blind_index_with(&secrets.index_key, KEY_CHECK_COLUMN, KEY_CHECK_LABEL);
        FieldKeys { secrets, check }
    }

    /// Parses a master key written as 64 hexadecimal characters or as base64 (standard alphabet,
    /// with or without padding) of 32 bytes; surrounding whitespace (a trailing newline in a
    /// key file) is ignored. Errors say what is wrong without echoing the text.
    pub fn parse(text: &str) -> Result<FieldKeys, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        let chars = text.chars().count();
        let mut master = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        if text.len() == 2 * MASTER_KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode_to_slice(text, master.as_mut_slice()).map_err(|_| KeyError::Encoding { chars })?;
            return Ok(FieldKeys::from_master(&master));
        }
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| STANDARD_NO_PAD.decode(text))
                .map_err(|_| KeyError::Encoding { chars })?,
        );
        if decoded.len() != MASTER_KEY_LEN {
            return Err(KeyError::Length { bytes: decoded.len() });
        }
        master.copy_from_slice(&decoded);
        Ok(FieldKeys::from_master(&master))
    }

    /// A new random master key from the operating system, as 64 hexadecimal characters (the
    /// text [`FieldKeys::parse`] reads). The text is zeroized when dropped.
    pub fn generate_master_hex() -> Result<Zeroizing<String>, KeyError> {
        let mut master = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        getrandom::fill(master.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Zeroizing::new(hex::encode(master.as_slice())))
    }

    /// Fixed, publicly known keys for tests. Never use them for real data: anyone can decrypt
    /// what they encrypt. Only built with the `test-keys` feature (or in this crate's tests).
    #[cfg(any(test, feature = "test-keys"))]
    pub fn insecure_test_keys() -> FieldKeys {
        FieldKeys::from_master(b"jiayuan-insecure-test-key-000001")
    }

    /// A value that identifies the master key without revealing it: the blind index of a fixed
    /// label. The store keeps it in the database to refuse a different key at connect.
    pub(crate) fn check_value(&self) -> &str {
        &self.check
    }

    /// Encrypts `plaintext` for `column` (`table.column`, the associated data).
    pub(crate) fn encrypt(&self, column: &'static str, plaintext: &str) -> Result<String, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Crypto {
            what: column,
            detail: format!("the operating system's random number generator failed: {e}"),
        })?;
        let sealed = self
            .secrets
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext.as_bytes(), aad: column.as_bytes() })
            .map_err(|_| StoreError::Crypto { what: column, detail: "encryption failed".into() })?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(format!("{FORMAT_V1}{}", STANDARD.encode(blob)))
    }

    /// Decrypts a value [`FieldKeys::encrypt`] stored in `column`. Anything that does not
    /// decrypt — another key, another column, a changed byte — is [`StoreError::Corrupt`]
    /// naming the column (never the value).
    pub(crate) fn decrypt(&self, column: &'static str, stored: &str) -> Result<String, StoreError> {
        let corrupt = |detail: &str| StoreError::Corrupt { what: column, detail: detail.to_owned() };
        let blob = stored
            .strip_prefix(FORMAT_V1)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|blob| blob.len() >= NONCE_LEN + TAG_LEN)
            .ok_or_else(|| corrupt("is not a value encrypted in the v1 format"))?;
        let (nonce, sealed) = blob
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| corrupt("is not a value encrypted in the v1 format"))?;
        let plain = self
            .secrets
            .cipher
            .decrypt(&XNonce::from(*nonce), Payload { msg: sealed, aad: column.as_bytes() })
            .map_err(|_| corrupt("cannot be decrypted with the configured data key (wrong key?)"))?;
        String::from_utf8(plain).map_err(|_| corrupt("decrypts to text that is not UTF-8"))
    }

    /// `hex(HMAC-SHA256(index key, column ‖ 0x00 ‖ normalised))`: equal for equal values in the
    /// same column, unrelated across columns and keys. The caller normalises the value.
    pub(crate) fn blind_index(&self, column: &str, normalised: &str) -> String {
        blind_index_with(&self.secrets.index_key, column, normalised)
    }
}

/// `HMAC-SHA256(master, label)`.
fn derive(master: &[u8; MASTER_KEY_LEN], label: &[u8]) -> [u8; MASTER_KEY_LEN] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn blind_index_with(key: &[u8; MASTER_KEY_LEN], column: &str, normalised: &str) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(column.as_bytes());
    mac.update(&[0]);
    mac.update(normalised.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Never shows key material.
impl fmt::Debug for FieldKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FieldKeys(***)")
    }
}

/// Same master key ⇔ same key check value (compares derived, non-secret values only).
impl PartialEq for FieldKeys {
    fn eq(&self, other: &FieldKeys) -> bool {
        Arc::ptr_eq(&self.secrets, &other.secrets) || self.check == other.check
    }
}

impl Eq for FieldKeys {}

#[cfg(test)]
mod at_rest_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn keys() -> FieldKeys {
        FieldKeys::parse(HEX).expect("valid hex key")
    }

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let k = keys();
        let a = k.encrypt("persons.doc_number", "440303199001010014").expect("encrypt");
        let b = k.encrypt("persons.doc_number", "440303199001010014").expect("encrypt");
        assert!(a.starts_with("v1:"), "{a}");
        assert_ne!(a, b, "random nonces make equal plaintexts differ");
        assert!(!a.contains("440303199001010014"));
        assert_eq!(k.decrypt("persons.doc_number", &a).expect("decrypt"), "440303199001010014");
        assert_eq!(k.decrypt("persons.doc_number", &b).expect("decrypt"), "440303199001010014");
        let empty = k.encrypt("persons.phone", "").expect("encrypt empty");
        assert_eq!(k.decrypt("persons.phone", &empty).expect("decrypt empty"), "");
    }

    #[test]
    fn tampered_ciphertext_does_not_decrypt() {
        let k = keys();
        let stored = k.encrypt("persons.phone", "13912345678").expect("encrypt");
        let mut blob = STANDARD.decode(&stored[3..]).expect("base64");
        for i in [0, NONCE_LEN, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            let bad = format!("v1:{}", STANDARD.encode(&bad));
            let err = k.decrypt("persons.phone", &bad).expect_err("tampered byte {i}");
            let text = err.to_string();
            assert!(matches!(err, StoreError::Corrupt { what: "persons.phone", .. }), "{text}");
            assert!(text.contains("cannot be decrypted with the configured data key (wrong key?)"), "{text}");
            assert!(!text.contains("13912345678"), "{text}");
        }
        blob.truncate(NONCE_LEN + TAG_LEN - 1);
        let short = format!("v1:{}", STANDARD.encode(&blob));
        assert!(matches!(k.decrypt("persons.phone", &short), Err(StoreError::Corrupt { .. })));
        assert!(matches!(k.decrypt("persons.phone", "13912345678"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(k.decrypt("persons.phone", "v1:***"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_value_moved_to_another_column_does_not_decrypt() {
        let k = keys();
        let stored = k.encrypt("persons.phone", "13912345678").expect("encrypt");
        let err = k.decrypt("persons.doc_number", &stored).expect_err("other column");
        assert!(matches!(err, StoreError::Corrupt { what: "persons.doc_number", .. }), "{err}");
    }

    #[test]
    fn another_key_does_not_decrypt() {
        let stored = keys().encrypt("persons.phone", "13912345678").expect("encrypt");
        let other = FieldKeys::from_master(&[9; 32]);
        assert!(matches!(other.decrypt("persons.phone", &stored), Err(StoreError::Corrupt { .. })));
        assert_ne!(keys(), other);
        assert_ne!(keys().check_value(), other.check_value());
    }

    #[test]
    fn blind_indexes_are_deterministic_per_column_and_key() {
        let k = keys();
        let a = k.blind_index("persons.phone", "13912345678");
        assert_eq!(a, k.blind_index("persons.phone", "13912345678"));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, k.blind_index("persons.phone", "13912345679"));
        assert_ne!(a, k.blind_index("persons.doc_number", "13912345678"));
        assert_ne!(a, FieldKeys::from_master(&[9; 32]).blind_index("persons.phone", "13912345678"));
        // The separator keeps (column, value) pairs apart: "ab" + "c" is not "a" + "bc".
        assert_ne!(k.blind_index("ab", "c"), k.blind_index("a", "bc"));
    }

    #[test]
    fn sub_keys_are_domain_separated() {
        let master = [7u8; 32];
        assert_ne!(derive(&master, ENCRYPTION_LABEL), derive(&master, BLIND_INDEX_LABEL));
        assert_ne!(derive(&master, ENCRYPTION_LABEL), master);
    }

    #[test]
    fn hex_and_base64_spell_the_same_key() {
        let bytes = hex::decode(HEX).expect("hex");
        let b64 = STANDARD.encode(&bytes);
        assert_eq!(FieldKeys::parse(&b64).expect("base64"), keys());
        assert_eq!(FieldKeys::parse(b64.trim_end_matches('=')).expect("unpadded"), keys());
        assert_eq!(FieldKeys::parse(&format!("  {}\n", HEX.to_uppercase())).expect("upper hex"), keys());
    }

    #[test]
    fn bad_keys_are_named_without_being_echoed() {
        assert_eq!(FieldKeys::parse("  \n"), Err(KeyError::Empty));
        let secretish = "not-a-key-but-secret-ish!";
        let err = FieldKeys::parse(secretish).expect_err("bad encoding");
        assert_eq!(err, KeyError::Encoding { chars: secretish.len() });
        assert!(!err.to_string().contains(secretish), "{err}");
        let short = STANDARD.encode([1u8; 16]);
        let err = FieldKeys::parse(&short).expect_err("16 bytes");
        assert_eq!(err, KeyError::Length { bytes: 16 });
        assert!(!err.to_string().contains(&short), "{err}");
        // 63 hex characters: neither hex of 32 bytes nor base64 of 32 bytes.
        assert!(FieldKeys::parse(&HEX[1..]).is_err());
    }

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = FieldKeys::generate_master_hex().expect("random");
        let b = FieldKeys::generate_master_hex().expect("random");
        assert_eq!(a.len(), 64);
        assert_ne!(*a, *b);
        assert_ne!(FieldKeys::parse(&a).expect("parses"), FieldKeys::parse(&b).expect("parses"));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let k = keys();
        assert_eq!(format!("{k:?}"), "FieldKeys(***)");
        assert_eq!(format!("{:?}", Some(k.clone())), "Some(FieldKeys(***))");
    }
}
