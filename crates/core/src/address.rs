//! Account addresses: an ed25519 public key, printed as bech32m with the `poi` prefix.
//!
//! The printable form (`poi1...`) carries a BCH checksum that catches any error of up to four
//! characters, so a mistyped address is refused instead of burning funds. Module accounts
//! (fee collector, treasury, ...) have addresses derived by hashing their name; nobody holds a key
//! for them, so only their module can move their funds.
//!
//! Stability: BETA; the printed form is part of the user interface.

use std::fmt;
use std::str::FromStr;

use bech32::{Bech32m, Hrp};
use borsh::{BorshDeserialize, BorshSerialize};

/// Human-readable prefix of every printed address.
pub const ADDRESS_HRP: &str = "poi";

/// A 32-byte account address: the account's ed25519 public key, or a module account's derived id.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Default,
)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The address of an ed25519 public key.
    pub fn from_public_key(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }

    /// The address of a module account, derived from its name with a domain-separated hash.
    pub fn module(name: &str) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("poi module account v1");
        hasher.update(name.as_bytes());
        Self(*hasher.finalize().as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why a printed address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The text is not valid bech32m (typo, wrong checksum or bad characters).
    #[error("invalid address {0:?}: bad bech32m encoding or checksum (check for a typo)")]
    Encoding(String),
    /// Valid bech32m, but for another network or kind of key.
    #[error("invalid address {text:?}: prefix {found:?}, expected \"poi\"")]
    Prefix {
        /// The address as given.
        text: String,
        /// The prefix found.
        found: String,
    },
    /// The payload is not 32 bytes.
    #[error("invalid address {text:?}: {len} bytes, expected 32")]
    Length {
        /// The address as given.
        text: String,
        /// Payload length found.
        len: usize,
    },
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (hrp, data) =
            bech32::decode(text).map_err(|_| AddressError::Encoding(text.to_string()))?;
        // bech32::decode accepts both bech32 and bech32m; insist on the m variant by re-encoding.
        let expected = Hrp::parse_unchecked(ADDRESS_HRP);
        if hrp != expected {
            return Err(AddressError::Prefix {
                text: text.to_string(),
                found: hrp.to_string(),
            });
        }
        let bytes: [u8; 32] = data
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::Length {
                text: text.to_string(),
                len: data.len(),
            })?;
        let address = Address(bytes);
        if address.to_string() != text.to_ascii_lowercase() {
            return Err(AddressError::Encoding(text.to_string()));
        }
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(ADDRESS_HRP);
        // Encoding 32 bytes under a valid 3-character prefix cannot exceed bech32's length limit.
        let text = bech32::encode::<Bech32m>(hrp, &self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn printed_form_round_trips(bytes in any::<[u8; 32]>()) {
            let address = Address(bytes);
            let text = address.to_string();
            prop_assert!(text.starts_with("poi1"));
            prop_assert_eq!(text.parse::<Address>(), Ok(address));
        }

        #[test]
        fn any_single_character_typo_is_caught(bytes in any::<[u8; 32]>(), pos in 4usize..58) {
            let text = Address(bytes).to_string();
            let mut chars: Vec<char> = text.chars().collect();
            let alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
            let replacement = alphabet.chars().find(|c| *c != chars[pos]).unwrap();
            chars[pos] = replacement;
            let typo: String = chars.into_iter().collect();
            prop_assert!(typo.parse::<Address>().is_err());
        }
    }

    #[test]
    fn wrong_prefix_and_length_are_typed_errors() {
        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("cosmos"), &[1u8; 32]).unwrap();
        assert!(matches!(
            other.parse::<Address>(),
            Err(AddressError::Prefix { .. })
        ));
        let short = bech32::encode::<Bech32m>(Hrp::parse_unchecked("poi"), &[1u8; 20]).unwrap();
        assert!(matches!(
            short.parse::<Address>(),
            Err(AddressError::Length { len: 20, .. })
        ));
        let legacy =
            bech32::encode::<bech32::Bech32>(Hrp::parse_unchecked("poi"), &[1u8; 32]).unwrap();
        assert!(matches!(
            legacy.parse::<Address>(),
            Err(AddressError::Encoding(_))
        ));
        assert!(matches!(
            "hello".parse::<Address>(),
            Err(AddressError::Encoding(_))
        ));
    }

    #[test]
    fn module_addresses_are_distinct_and_stable() {
        assert_ne!(Address::module("fees"), Address::module("treasury"));
        assert_eq!(Address::module("fees"), Address::module("fees"));
    }
}
