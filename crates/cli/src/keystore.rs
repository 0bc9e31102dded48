//! Encrypted on-disk keystore for ed25519 signing keys.
//!
//! A keystore is a directory (for the CLI, `HOME/keys/`) holding one JSON file per key,
//! `NAME.json`. Key names are 1 to 64 characters from `[a-zA-Z0-9_-]`. A key's secret is
//! its 32-byte ed25519 seed; the public key is derived from it with `ed25519-dalek` and
//! stored in clear, so [`Keystore::info`] and [`Keystore::list`] need no password.
//!
//! Seeds are normally encrypted with a password ([`Protection::Password`]). Unencrypted
//! seeds ([`Protection::InsecurePlaintext`]) exist only for throwaway devnet keys; the
//! caller must ask for them explicitly and the file says so in its `insecure_plaintext`
//! field.
//!
//! # Format
//!
//! Version 1 files are UTF-8 JSON objects. All binary values are lowercase hex strings
//! (uppercase is accepted on reading). An encrypted key:
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "alice",
//!   "public_key": "<64 hex chars: 32-byte ed25519 public key>",
//!   "insecure_plaintext": false,
//!   "crypto": {
//!     "kdf": "argon2id",
//!     "kdf_params": {
//!       "m_cost": 19456,
//!       "t_cost": 2,
//!       "p_cost": 1,
//!       "salt": "<32 hex chars: random 16-byte salt>"
//!     },
//!     "cipher": "xchacha20-poly1305",
//!     "nonce": "<48 hex chars: random 24-byte nonce>",
//!     "ciphertext": "<96 hex chars: 32-byte encrypted seed, then 16-byte tag>"
//!   }
//! }
//! ```
//!
//! - The encryption key is `argon2id(password, salt)` (argon2 version 0x13, 32-byte output)
//!   with memory cost `m_cost` KiB, `t_cost` passes and `p_cost` lanes. New keys use
//!   [`KdfParams::default`], the OWASP recommendation (19456 KiB, 2 passes, 1 lane).
//! - The seed is sealed with XChaCha20-Poly1305 under that key and `nonce`. The associated
//!   data is the ASCII string `poi-keystore-v1`, a zero byte, the 32 public-key bytes and
//!   the UTF-8 name, so a file whose public key or name was changed (for example to pass it
//!   off as another key) fails to decrypt.
//!
//! An insecure plaintext key (devnet only) replaces `crypto` with the seed itself:
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "dev",
//!   "public_key": "<64 hex chars>",
//!   "insecure_plaintext": true,
//!   "seed": "<64 hex chars: 32-byte ed25519 seed>"
//! }
//! ```
//!
//! Readers reject unknown fields, a `version` other than 1, a `name` that differs from the
//! file name, a public key that is not a valid ed25519 point, and a plaintext seed whose
//! public key differs from the stored one. After decryption the seed's public key is
//! checked against the stored one as well.
//!
//! Files are written atomically: the JSON goes to a hidden temporary file in the keystore
//! directory (mode 0600 on unix), which is fsynced and then moved into place without ever
//! replacing an existing key (a hard link, which fails if the name is taken, falling back
//! to a rename on filesystems without hard links). The directory is created with mode 0700
//! on unix.
//!
//! Secrets held by this module (seeds, derived keys, passwords inside [`Protection`]) are
//! overwritten with zeros when dropped, on a best-effort basis; `ed25519_dalek::SigningKey`
//! zeroizes itself. Plaintext keys get no such care: they are not secret from anyone who
//! can read the file.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{AeadInPlace, Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The key-file format version this module reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The longest allowed key name, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Key files larger than this are rejected as corrupt without being parsed.
const MAX_FILE_LEN: u64 = 64 * 1024;
/// Domain separator at the start of the AEAD associated data.
const AAD_DOMAIN: &[u8] = b"poi-keystore-v1\0";
/// The only key-derivation function of format version 1.
const KDF_ARGON2ID: &str = "argon2id";
/// The only cipher of format version 1.
const CIPHER_XCHACHA20_POLY1305: &str = "xchacha20-poly1305";
const SEED_LEN: usize = 32;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Result type of keystore operations.
pub type Result<T, E = KeystoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the keystore.
///
/// Messages are lowercase, quote the offending input (never a secret) and, where a likely
/// fix exists, end with a hint.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// A key name is empty, longer than 64 characters, or has a character outside
    /// `[a-zA-Z0-9_-]`.
    #[error("invalid key name {name:?}: use 1 to 64 characters from a-z, A-Z, 0-9, '_' and '-'")]
    InvalidName {
        /// The rejected name.
        name: String,
    },

    /// A hex seed could not be parsed. The message does not repeat the input, which is
    /// secret.
    #[error("invalid seed: {reason}; expected exactly 64 hex characters (32 bytes)")]
    InvalidSeed {
        /// What is wrong with it.
        reason: String,
    },

    /// A key with this name is already stored; keys are never overwritten.
    #[error(
        "key {name:?} already exists in {}; choose another name, or move {} away first",
        .dir.display(),
        .path.display()
    )]
    AlreadyExists {
        /// The key name.
        name: String,
        /// The keystore directory.
        dir: PathBuf,
        /// The existing key file.
        path: PathBuf,
    },

    /// No key with this name is stored.
    #[error(
        "key {name:?} not found in {}; check the name, or generate or import the key first",
        .dir.display()
    )]
    NotFound {
        /// The key name.
        name: String,
        /// The keystore directory.
        dir: PathBuf,
    },

    /// The key is encrypted and no password was given.
    #[error("key {name:?} is encrypted: a password is required to unlock it")]
    PasswordRequired {
        /// The key name.
        name: String,
    },

    /// Decryption failed: the password is wrong, or the encrypted parts of the file were
    /// modified (the two cannot be told apart).
    #[error(
        "wrong password for key {name:?} (if the password is right, {} has been modified)",
        .path.display()
    )]
    WrongPassword {
        /// The key name.
        name: String,
        /// The key file.
        path: PathBuf,
    },

    /// An empty password was given for encrypting a key.
    #[error("refusing to encrypt key {name:?} with an empty password; choose a non-empty one")]
    EmptyPassword {
        /// The key name.
        name: String,
    },

    /// A key file is not valid JSON or does not follow the format.
    #[error("key file {} is corrupt: {reason}", .path.display())]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A key file has a format version this build does not know.
    #[error(
        "key file {} has format version {version}, but this poi reads only version 1; \
         upgrade poi to use it",
        .path.display()
    )]
    UnsupportedVersion {
        /// The key file.
        path: PathBuf,
        /// The version found in the file.
        version: u64,
    },

    /// A key file holds a key with another name than its file name (for example after a
    /// rename); refusing it stops one key being passed off as another.
    #[error(
        "key file {} holds key {found:?}, not {expected:?}; rename the file to {found}.json",
        .path.display()
    )]
    NameMismatch {
        /// The key file.
        path: PathBuf,
        /// The name implied by the file name.
        expected: String,
        /// The name stored inside the file.
        found: String,
    },

    /// The secret seed does not produce the public key stored beside it.
    #[error(
        "the secret of key {name:?} does not match its stored public key: {} is corrupt \
         or has been tampered with",
        .path.display()
    )]
    PublicKeyMismatch {
        /// The key name.
        name: String,
        /// The key file.
        path: PathBuf,
    },

    /// [`KdfParams`] given to [`Keystore::with_kdf`] are out of range.
    #[error("invalid argon2id parameters: {reason}")]
    InvalidKdfParams {
        /// What is wrong with them.
        reason: String,
    },

    /// The keystore path exists but is not a directory.
    #[error(
        "keystore path {} is not a directory; choose another keystore location",
        .path.display()
    )]
    NotADirectory {
        /// The path given to [`Keystore::open`].
        path: PathBuf,
    },

    /// A filesystem operation failed.
    #[error("cannot {action} {}: {cause}", .path.display())]
    Io {
        /// What was being done, e.g. `"read"`.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },

    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system: {cause}")]
    Random {
        /// The underlying error.
        cause: getrandom::Error,
    },

    /// Key derivation or encryption failed unexpectedly.
    #[error("cannot encrypt key {name:?}: {reason}")]
    Crypto {
        /// The key name.
        name: String,
        /// What failed.
        reason: String,
    },
}

/// How a key's seed is protected on disk.
///
/// A password held here is overwritten with zeros when the value is dropped.
pub enum Protection {
    /// Encrypt the seed under this password (argon2id, then XChaCha20-Poly1305). The
    /// password must not be empty.
    Password(String),
    /// Store the seed unencrypted, as hex, in a file marked `"insecure_plaintext": true`.
    /// Anyone who can read the file controls the key: only for throwaway devnet keys, and
    /// only when the user asked for it explicitly.
    InsecurePlaintext,
}

impl fmt::Debug for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::InsecurePlaintext => f.write_str("InsecurePlaintext"),
        }
    }
}

impl Drop for Protection {
    fn drop(&mut self) {
        if let Self::Password(password) = self {
            wipe_string(password);
        }
    }
}

/// Argon2id cost parameters used to encrypt new keys.
///
/// Files record the parameters they were written with, so changing these never affects
/// existing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_cost: u32,
    /// Number of passes over memory.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl KdfParams {
    /// The OWASP-recommended argon2id parameters: 19456 KiB (19 MiB), 2 passes, 1 lane.
    pub const OWASP: Self = Self {
        m_cost: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    /// The largest accepted memory cost: 4 GiB, in KiB.
    pub const MAX_M_COST: u32 = 4 * 1024 * 1024;
    /// The largest accepted number of passes.
    pub const MAX_T_COST: u32 = 1024;
    /// The largest accepted number of lanes.
    pub const MAX_P_COST: u32 = 255;

    /// Checks that the parameters are within the ranges argon2 and this module accept:
    /// `1 <= t_cost <= 1024`, `1 <= p_cost <= 255` and `8 * p_cost <= m_cost <= 4194304`.
    pub fn validate(&self) -> Result<()> {
        self.to_argon2()
            .map(|_| ())
            .map_err(|reason| KeystoreError::InvalidKdfParams { reason })
    }

    fn to_argon2(self) -> Result<Params, String> {
        let Self {
            m_cost,
            t_cost,
            p_cost,
        } = self;
        if t_cost == 0 || t_cost > Self::MAX_T_COST {
            return Err(format!(
                "t_cost is {t_cost}, expected 1 to {}",
                Self::MAX_T_COST
            ));
        }
        if p_cost == 0 || p_cost > Self::MAX_P_COST {
            return Err(format!(
                "p_cost is {p_cost}, expected 1 to {}",
                Self::MAX_P_COST
            ));
        }
        let min_m_cost = 8 * p_cost;
        if m_cost < min_m_cost || m_cost > Self::MAX_M_COST {
            return Err(format!(
                "m_cost is {m_cost} KiB, expected {min_m_cost} (8 per lane) to {} KiB",
                Self::MAX_M_COST
            ));
        }
        Params::new(m_cost, t_cost, p_cost, Some(SEED_LEN)).map_err(|e| e.to_string())
    }
}

impl Default for KdfParams {
    /// [`KdfParams::OWASP`].
    fn default() -> Self {
        Self::OWASP
    }
}

/// Public facts about a stored key; reading them needs no password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key name (the file name without `.json`).
    pub name: String,
    /// The ed25519 public key.
    pub public_key: [u8; 32],
    /// Whether the seed is password-encrypted (false for insecure plaintext keys).
    pub encrypted: bool,
}

/// A directory of key files; see the [module documentation](self) for the format.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
    kdf: KdfParams,
}

impl Keystore {
    /// Opens the keystore in `dir`, creating the directory (mode 0700 on unix, with any
    /// missing parents) if it does not exist. New keys use [`KdfParams::OWASP`].
    pub fn open(dir: &Path) -> Result<Self> {
        Self::with_kdf(dir, KdfParams::default())
    }

    /// Like [`Keystore::open`], but encrypts new keys with the given argon2id parameters
    /// (tests use cheap ones). Fails with [`KeystoreError::InvalidKdfParams`] if they are
    /// out of range.
    pub fn with_kdf(dir: &Path, kdf: KdfParams) -> Result<Self> {
        kdf.validate()?;
        ensure_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            kdf,
        })
    }

    /// The keystore directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds (or would hold) key `name`.
    pub fn key_path(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.path_for(name))
    }

    /// Generates a new key from operating-system randomness and stores it as `name`.
    ///
    /// Fails with [`KeystoreError::AlreadyExists`] if the name is taken.
    pub fn generate(&self, name: &str, protection: Protection) -> Result<KeyInfo> {
        validate_name(name)?;
        let mut seed = Secret([0; SEED_LEN]);
        fill_random(&mut seed.0)?;
        self.store(name, &seed, &protection)
    }

    /// Stores the given ed25519 seed as key `name` (see [`parse_seed_hex`]).
    ///
    /// Fails with [`KeystoreError::AlreadyExists`] if the name is taken. The caller's copy
    /// of `seed` is not wiped.
    pub fn import(&self, name: &str, seed: [u8; 32], protection: Protection) -> Result<KeyInfo> {
        let seed = Secret(seed);
        self.store(name, &seed, &protection)
    }

    /// All keys, sorted by name (byte order).
    ///
    /// Only `*.json` files whose stem is a valid key name are considered; other files and
    /// directories are ignored. Any considered file that cannot be read or parsed is an
    /// error naming that file.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        let entries =
            fs::read_dir(&self.dir).map_err(|cause| io_error("list", &self.dir, cause))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|cause| io_error("list", &self.dir, cause))?;
            let Some(name) = key_name_of_file(&entry.file_name()) else {
                continue;
            };
            let path = entry.path();
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {}
                // Directories, dangling links and files removed meanwhile are no keys.
                Ok(_) => continue,
                Err(cause) if cause.kind() == io::ErrorKind::NotFound => continue,
                Err(cause) => return Err(io_error("read", &path, cause)),
            }
            let bytes = match read_limited(&path) {
                Ok(bytes) => bytes,
                Err(cause) if cause.kind() == io::ErrorKind::NotFound => continue,
                Err(cause) => return Err(io_error("read", &path, cause)),
            };
            keys.push(parse_key_file(&path, &name, &bytes)?.info());
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// The public facts about key `name`; needs no password.
    pub fn info(&self, name: &str) -> Result<KeyInfo> {
        Ok(self.load(name)?.info())
    }

    /// Decrypts key `name` and returns it as a signing key (which zeroizes on drop).
    ///
    /// Insecure plaintext keys need no password (a given one is ignored). For encrypted
    /// keys a missing password is [`KeystoreError::PasswordRequired`] and a wrong one
    /// [`KeystoreError::WrongPassword`].
    pub fn unlock(&self, name: &str, password: Option<&str>) -> Result<SigningKey> {
        let key = self.load(name)?;
        let seed = match &key.secret {
            StoredSecret::Plaintext(seed) => Secret(seed.0),
            StoredSecret::Encrypted(sealed) => {
                let password = password.ok_or_else(|| KeystoreError::PasswordRequired {
                    name: key.name.clone(),
                })?;
                sealed.open(password, &key)?
            }
        };
        let signing_key = SigningKey::from_bytes(&seed.0);
        if signing_key.verifying_key().to_bytes() != key.public_key {
            return Err(KeystoreError::PublicKeyMismatch {
                name: key.name,
                path: key.path,
            });
        }
        Ok(signing_key)
    }

    /// Decrypts key `name` and returns its 32-byte ed25519 seed, like [`Keystore::unlock`].
    /// The caller should wipe the returned bytes when done with them.
    pub fn export(&self, name: &str, password: Option<&str>) -> Result<[u8; 32]> {
        Ok(self.unlock(name, password)?.to_bytes())
    }

    fn path_for(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn already_exists(&self, name: &str, path: &Path) -> KeystoreError {
        KeystoreError::AlreadyExists {
            name: name.to_owned(),
            dir: self.dir.clone(),
            path: path.to_owned(),
        }
    }

    fn load(&self, name: &str) -> Result<LoadedKey> {
        validate_name(name)?;
        let path = self.path_for(name);
        let bytes = read_limited(&path).map_err(|cause| {
            if cause.kind() == io::ErrorKind::NotFound {
                KeystoreError::NotFound {
                    name: name.to_owned(),
                    dir: self.dir.clone(),
                }
            } else {
                io_error("read", &path, cause)
            }
        })?;
        parse_key_file(&path, name, &bytes)
    }

    fn store(
        &self,
        name: &str,
        seed: &Secret<SEED_LEN>,
        protection: &Protection,
    ) -> Result<KeyInfo> {
        validate_name(name)?;
        let path = self.path_for(name);
        // Checked again, race-free, when the file is moved into place; checking here too
        // avoids a slow key derivation for nothing.
        if path.symlink_metadata().is_ok() {
            return Err(self.already_exists(name, &path));
        }
        let public_key = SigningKey::from_bytes(&seed.0).verifying_key().to_bytes();
        let mut file = KeyFileV1 {
            version: FORMAT_VERSION,
            name: name.to_owned(),
            public_key: hex::encode(public_key),
            insecure_plaintext: false,
            seed: None,
            crypto: None,
        };
        match protection {
            Protection::Password(password) => {
                if password.is_empty() {
                    return Err(KeystoreError::EmptyPassword {
                        name: name.to_owned(),
                    });
                }
                file.crypto = Some(seal(seed, password, self.kdf, name, &public_key)?);
            }
            Protection::InsecurePlaintext => {
                file.insecure_plaintext = true;
                file.seed = Some(hex::encode(seed.0));
            }
        }
        let mut json = serde_json::to_vec_pretty(&file)
            .map_err(|cause| io_error("encode", &path, cause.into()))?;
        json.push(b'\n');
        let written = self.write_new(name, &path, &json);
        if let Some(seed_hex) = &mut file.seed {
            wipe_string(seed_hex);
        }
        wipe(&mut json);
        written?;
        Ok(KeyInfo {
            name: name.to_owned(),
            public_key,
            encrypted: file.crypto.is_some(),
        })
    }

    /// Atomically creates `path` with `contents`, failing if it exists.
    fn write_new(&self, name: &str, path: &Path, contents: &[u8]) -> Result<()> {
        let mut suffix = [0; 8];
        fill_random(&mut suffix)?;
        let tmp = self
            .dir
            .join(format!(".{name}.json.{}.tmp", hex::encode(suffix)));
        let result = write_synced(&tmp, contents)
            .map_err(|cause| io_error("write", &tmp, cause))
            .and_then(|()| self.publish(name, &tmp, path));
        // After a hard link the temporary name is left over; after a rename it is gone.
        let _ = fs::remove_file(&tmp);
        result?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Moves the finished temporary file to `path` without replacing an existing file.
    fn publish(&self, name: &str, tmp: &Path, path: &Path) -> Result<()> {
        match fs::hard_link(tmp, path) {
            Ok(()) => Ok(()),
            Err(cause) if cause.kind() == io::ErrorKind::AlreadyExists => {
                Err(self.already_exists(name, path))
            }
            // No hard links on this filesystem: rename, which is atomic but may replace,
            // so check first (a concurrent writer of the same name could still race us).
            Err(_) => {
                if path.symlink_metadata().is_ok() {
                    return Err(self.already_exists(name, path));
                }
                fs::rename(tmp, path).map_err(|cause| io_error("create", path, cause))
            }
        }
    }
}

/// Checks that `name` is a valid key name: 1 to 64 characters from `[a-zA-Z0-9_-]`.
pub fn validate_name(name: &str) -> Result<()> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(valid_char) {
        return Err(KeystoreError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Parses a 32-byte ed25519 seed written as 64 hex characters (either case; surrounding
/// whitespace is ignored). The caller should wipe the returned bytes when done with them.
pub fn parse_seed_hex(text: &str) -> Result<[u8; 32]> {
    let text = text.trim();
    if text.len() != 2 * SEED_LEN {
        let found = text.chars().count();
        return Err(KeystoreError::InvalidSeed {
            reason: format!("found {found} characters"),
        });
    }
    let mut seed = [0; SEED_LEN];
    if hex::decode_to_slice(text, &mut seed).is_err() {
        wipe(&mut seed);
        return Err(KeystoreError::InvalidSeed {
            reason: "found characters that are not hex digits".to_owned(),
        });
    }
    Ok(seed)
}

/// A fixed-size secret that is overwritten with zeros when dropped.
struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites `bytes` with zeros in a way the optimiser keeps (best effort).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// Overwrites a string's whole buffer with zeros and leaves it empty.
fn wipe_string(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    let capacity = bytes.capacity();
    bytes.resize(capacity, 0);
    wipe(&mut bytes);
}

fn io_error(action: &'static str, path: &Path, cause: io::Error) -> KeystoreError {
    KeystoreError::Io {
        action,
        path: path.to_owned(),
        cause,
    }
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|cause| KeystoreError::Random { cause })
}

/// The key name a directory entry stands for, if it is `NAME.json` with a valid name.
fn key_name_of_file(file_name: &OsStr) -> Option<String> {
    let stem = file_name.to_str()?.strip_suffix(".json")?;
    validate_name(stem).ok()?;
    Some(stem.to_owned())
}

/// The on-disk layout of a version 1 key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileV1 {
    version: u32,
    name: String,
    public_key: String,
    insecure_plaintext: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crypto: Option<CryptoV1>,
}

/// The `crypto` object of a version 1 key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CryptoV1 {
    kdf: String,
    kdf_params: KdfParamsV1,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// The `crypto.kdf_params` object of a version 1 key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParamsV1 {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

/// A key file that passed every check that needs no password.
struct LoadedKey {
    name: String,
    path: PathBuf,
    public_key: [u8; 32],
    secret: StoredSecret,
}

impl LoadedKey {
    fn info(&self) -> KeyInfo {
        KeyInfo {
            name: self.name.clone(),
            public_key: self.public_key,
            encrypted: matches!(self.secret, StoredSecret::Encrypted(_)),
        }
    }
}

enum StoredSecret {
    Plaintext(Secret<SEED_LEN>),
    Encrypted(Sealed),
}

/// A decoded `crypto` object.
struct Sealed {
    kdf: Params,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: [u8; SEED_LEN],
    tag: [u8; TAG_LEN],
}

impl Sealed {
    /// Decrypts the seed of `key` with `password`.
    fn open(&self, password: &str, key: &LoadedKey) -> Result<Secret<SEED_LEN>> {
        let encryption_key = derive_key(password, &self.salt, self.kdf.clone()).map_err(|e| {
            KeystoreError::Corrupt {
                path: key.path.clone(),
                reason: format!("key derivation failed: {e}"),
            }
        })?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&encryption_key.0));
        let mut seed = Secret(self.ciphertext);
        let aad = associated_data(&key.name, &key.public_key);
        let nonce = XNonce::from_slice(&self.nonce);
        let tag = Tag::from_slice(&self.tag);
        cipher
            .decrypt_in_place_detached(nonce, &aad, &mut seed.0, tag)
            .map_err(|_| KeystoreError::WrongPassword {
                name: key.name.clone(),
                path: key.path.clone(),
            })?;
        Ok(seed)
    }
}

/// The associated data that binds a ciphertext to its key's name and public key.
fn associated_data(name: &str, public_key: &[u8; 32]) -> Vec<u8> {
    [AAD_DOMAIN, public_key, name.as_bytes()].concat()
}

fn derive_key(password: &str, salt: &[u8], params: Params) -> Result<Secret<32>, String> {
    let mut key = Secret([0; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut key.0)
        .map_err(|e| e.to_string())?;
    Ok(key)
}

/// Encrypts `seed` under `password` into a `crypto` object.
fn seal(
    seed: &Secret<SEED_LEN>,
    password: &str,
    kdf: KdfParams,
    name: &str,
    public_key: &[u8; 32],
) -> Result<CryptoV1> {
    let crypto_error = |reason: String| KeystoreError::Crypto {
        name: name.to_owned(),
        reason,
    };
    let mut salt = [0; SALT_LEN];
    fill_random(&mut salt)?;
    let mut nonce = [0; NONCE_LEN];
    fill_random(&mut nonce)?;
    let params = kdf.to_argon2().map_err(crypto_error)?;
    let encryption_key = derive_key(password, &salt, params).map_err(crypto_error)?;
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&encryption_key.0));
    let mut buffer = Secret(seed.0);
    let aad = associated_data(name, public_key);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut buffer.0)
        .map_err(|_| crypto_error("XChaCha20-Poly1305 encryption failed".to_owned()))?;
    let mut ciphertext = Vec::with_capacity(SEED_LEN + TAG_LEN);
    ciphertext.extend_from_slice(&buffer.0);
    ciphertext.extend_from_slice(&tag);
    Ok(CryptoV1 {
        kdf: KDF_ARGON2ID.to_owned(),
        kdf_params: KdfParamsV1 {
            m_cost: kdf.m_cost,
            t_cost: kdf.t_cost,
            p_cost: kdf.p_cost,
            salt: hex::encode(salt),
        },
        cipher: CIPHER_XCHACHA20_POLY1305.to_owned(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    })
}

/// Parses and checks the file `path`, which should hold key `name`.
fn parse_key_file(path: &Path, name: &str, bytes: &[u8]) -> Result<LoadedKey> {
    let corrupt = |reason: String| KeystoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(corrupt(format!("it is larger than {MAX_FILE_LEN} bytes")));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(corrupt("expected a JSON object".to_owned()));
    }
    let version = match value.get("version") {
        None => return Err(corrupt("missing field `version`".to_owned())),
        Some(version) => version
            .as_u64()
            .ok_or_else(|| corrupt("`version` must be a non-negative integer".to_owned()))?,
    };
    if version != u64::from(FORMAT_VERSION) {
        return Err(KeystoreError::UnsupportedVersion {
            path: path.to_owned(),
            version,
        });
    }
    let file: KeyFileV1 = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    if file.name != name {
        if validate_name(&file.name).is_err() {
            return Err(corrupt(format!(
                "`name` {:?} is not a valid key name",
                file.name
            )));
        }
        return Err(KeystoreError::NameMismatch {
            path: path.to_owned(),
            expected: name.to_owned(),
            found: file.name,
        });
    }
    let mut public_key = [0; 32];
    decode_hex_field(&file.public_key, "public_key", &mut public_key).map_err(corrupt)?;
    if VerifyingKey::from_bytes(&public_key).is_err() {
        return Err(corrupt(
            "`public_key` is not a valid ed25519 public key".to_owned(),
        ));
    }
    let secret = match (file.insecure_plaintext, &file.seed, file.crypto) {
        (true, Some(seed_hex), None) => {
            let mut seed = Secret([0; SEED_LEN]);
            decode_hex_field(seed_hex, "seed", &mut seed.0).map_err(corrupt)?;
            if SigningKey::from_bytes(&seed.0).verifying_key().to_bytes() != public_key {
                return Err(KeystoreError::PublicKeyMismatch {
                    name: name.to_owned(),
                    path: path.to_owned(),
                });
            }
            StoredSecret::Plaintext(seed)
        }
        (false, None, Some(crypto)) => {
            StoredSecret::Encrypted(decode_crypto(crypto).map_err(corrupt)?)
        }
        (true, _, _) => {
            return Err(corrupt(
                "an insecure plaintext key needs a `seed` field and no `crypto` field".to_owned(),
            ));
        }
        (false, _, _) => {
            return Err(corrupt(
                "an encrypted key needs a `crypto` field and no `seed` field".to_owned(),
            ));
        }
    };
    Ok(LoadedKey {
        name: file.name,
        path: path.to_owned(),
        public_key,
        secret,
    })
}

fn decode_crypto(crypto: CryptoV1) -> Result<Sealed, String> {
    if crypto.kdf != KDF_ARGON2ID {
        return Err(format!(
            "unsupported `kdf` {:?}, expected {KDF_ARGON2ID:?}",
            crypto.kdf
        ));
    }
    if crypto.cipher != CIPHER_XCHACHA20_POLY1305 {
        return Err(format!(
            "unsupported `cipher` {:?}, expected {CIPHER_XCHACHA20_POLY1305:?}",
            crypto.cipher
        ));
    }
    let params = &crypto.kdf_params;
    let kdf = KdfParams {
        m_cost: params.m_cost,
        t_cost: params.t_cost,
        p_cost: params.p_cost,
    }
    .to_argon2()
    .map_err(|reason| format!("invalid `kdf_params`: {reason}"))?;
    let mut sealed = Sealed {
        kdf,
        salt: [0; SALT_LEN],
        nonce: [0; NONCE_LEN],
        ciphertext: [0; SEED_LEN],
        tag: [0; TAG_LEN],
    };
    decode_hex_field(&params.salt, "kdf_params.salt", &mut sealed.salt)?;
    decode_hex_field(&crypto.nonce, "nonce", &mut sealed.nonce)?;
    let mut combined = [0; SEED_LEN + TAG_LEN];
    decode_hex_field(&crypto.ciphertext, "ciphertext", &mut combined)?;
    let (ciphertext, tag) = combined.split_at(SEED_LEN);
    sealed.ciphertext.copy_from_slice(ciphertext);
    sealed.tag.copy_from_slice(tag);
    Ok(sealed)
}

fn decode_hex_field(text: &str, field: &str, out: &mut [u8]) -> Result<(), String> {
    hex::decode_to_slice(text, out)
        .map_err(|_| format!("`{field}` must be {} hex characters", 2 * out.len()))
}

/// Reads a file, but no more than one byte past [`MAX_FILE_LEN`].
fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Creates `path` (which must not exist) readable only by its owner, writes `contents`
/// and flushes them to disk.
fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask may have removed bits; make the mode exactly 0600.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()
}

/// Flushes a directory's entries to disk, so a new file survives a crash. Best effort:
/// some platforms and filesystems cannot sync directories.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Makes sure `dir` is a directory, creating it (mode 0700 on unix) if missing.
fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(KeystoreError::NotADirectory {
                path: dir.to_owned(),
            });
        }
        Err(cause) if cause.kind() == io::ErrorKind::NotFound => {}
        Err(cause) => return Err(io_error("access", dir, cause)),
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|cause| io_error("create directory", dir, cause))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask may have removed bits; make the mode exactly 0700.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|cause| io_error("set permissions of", dir, cause))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, Verifier};
    use serde_json::{Value, json};
    use tempfile::TempDir;

    /// Cheap argon2id parameters so tests run fast.
    const FAST: KdfParams = KdfParams {
        m_cost: 8,
        t_cost: 1,
        p_cost: 1,
    };
    const SEED: [u8; 32] = [7; 32];

    fn keystore() -> (TempDir, Keystore) {
        let tmp = tempfile::tempdir().unwrap();
        let keys = Keystore::with_kdf(&tmp.path().join("keys"), FAST).unwrap();
        (tmp, keys)
    }

    fn password(p: &str) -> Protection {
        Protection::Password(p.to_owned())
    }

    fn read_json(keys: &Keystore, name: &str) -> Value {
        serde_json::from_slice(&fs::read(keys.key_path(name).unwrap()).unwrap()).unwrap()
    }

    fn write_json(keys: &Keystore, name: &str, value: &Value) {
        fs::write(keys.key_path(name).unwrap(), value.to_string()).unwrap();
    }

    fn public_key_of(seed: &[u8; 32]) -> [u8; 32] {
        SigningKey::from_bytes(seed).verifying_key().to_bytes()
    }

    /// Flips the first hex digit of a string field found by JSON pointer.
    fn flip_hex(value: &mut Value, pointer: &str) {
        let field = value.pointer_mut(pointer).unwrap();
        let text = field.as_str().unwrap().to_owned();
        let first = if text.starts_with('0') { "1" } else { "0" };
        *field = Value::String(format!("{first}{}", &text[1..]));
    }

    #[test]
    fn encrypted_round_trip() {
        let (_tmp, keys) = keystore();
        let info = keys.generate("alice", password("hunter2")).unwrap();
        assert_eq!(info.name, "alice");
        assert!(info.encrypted);
        assert_eq!(keys.info("alice").unwrap(), info);

        let signing_key = keys.unlock("alice", Some("hunter2")).unwrap();
        assert_eq!(signing_key.verifying_key().to_bytes(), info.public_key);
        let signature = signing_key.sign(b"hello");
        let verifying_key = VerifyingKey::from_bytes(&info.public_key).unwrap();
        assert!(verifying_key.verify(b"hello", &signature).is_ok());
        assert_eq!(
            keys.export("alice", Some("hunter2")).unwrap(),
            signing_key.to_bytes()
        );

        let file = read_json(&keys, "alice");
        assert_eq!(file["version"], 1);
        assert_eq!(file["name"], "alice");
        assert_eq!(file["insecure_plaintext"], false);
        assert_eq!(file["public_key"], hex::encode(info.public_key));
        assert_eq!(file["crypto"]["kdf"], "argon2id");
        assert_eq!(file["crypto"]["cipher"], "xchacha20-poly1305");
        assert_eq!(file["crypto"]["kdf_params"]["m_cost"], FAST.m_cost);
        assert!(file.get("seed").is_none());
    }

    #[test]
    fn encrypted_import_round_trip_hides_the_seed() {
        let (_tmp, keys) = keystore();
        let info = keys.import("alice", SEED, password("pw")).unwrap();
        assert_eq!(info.public_key, public_key_of(&SEED));
        assert!(info.encrypted);
        assert_eq!(keys.export("alice", Some("pw")).unwrap(), SEED);
        let text = fs::read_to_string(keys.key_path("alice").unwrap()).unwrap();
        assert!(!text.contains(&hex::encode(SEED)));
    }

    #[test]
    fn plaintext_round_trip() {
        let (_tmp, keys) = keystore();
        let info = keys
            .import("dev", SEED, Protection::InsecurePlaintext)
            .unwrap();
        assert!(!info.encrypted);
        assert_eq!(keys.info("dev").unwrap(), info);
        assert_eq!(keys.export("dev", None).unwrap(), SEED);
        // A password given for a plaintext key is ignored.
        assert_eq!(keys.export("dev", Some("anything")).unwrap(), SEED);

        let file = read_json(&keys, "dev");
        assert_eq!(file["insecure_plaintext"], true);
        assert_eq!(file["seed"], hex::encode(SEED));
        assert!(file.get("crypto").is_none());

        let generated = keys
            .generate("dev2", Protection::InsecurePlaintext)
            .unwrap();
        let unlocked = keys.unlock("dev2", None).unwrap();
        assert_eq!(unlocked.verifying_key().to_bytes(), generated.public_key);
    }

    #[test]
    fn default_kdf_is_owasp_and_recorded_in_the_file() {
        assert_eq!(KdfParams::default(), KdfParams::OWASP);
        assert_eq!(
            KdfParams::OWASP,
            KdfParams {
                m_cost: 19456,
                t_cost: 2,
                p_cost: 1
            }
        );
        let tmp = tempfile::tempdir().unwrap();
        let keys = Keystore::open(tmp.path()).unwrap();
        keys.import("alice", SEED, password("pw")).unwrap();
        let params = &read_json(&keys, "alice")["crypto"]["kdf_params"];
        assert_eq!(params["m_cost"], 19456);
        assert_eq!(params["t_cost"], 2);
        assert_eq!(params["p_cost"], 1);
        assert_eq!(params["salt"].as_str().unwrap().len(), 32);
        assert_eq!(keys.export("alice", Some("pw")).unwrap(), SEED);
    }

    #[test]
    fn invalid_kdf_params_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in [
            KdfParams { m_cost: 7, ..FAST },
            KdfParams { t_cost: 0, ..FAST },
            KdfParams { p_cost: 0, ..FAST },
            KdfParams {
                m_cost: 8,
                p_cost: 2,
                ..FAST
            },
            KdfParams {
                m_cost: u32::MAX,
                ..FAST
            },
        ] {
            let err = Keystore::with_kdf(tmp.path(), bad).unwrap_err();
            assert!(
                matches!(err, KeystoreError::InvalidKdfParams { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn wrong_password_fails() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("right")).unwrap();
        for wrong in ["wrong", "", "right "] {
            let err = keys.unlock("alice", Some(wrong)).unwrap_err();
            assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{err}");
        }
        let err = keys.export("alice", Some("wrong")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("wrong password for key \"alice\""),
            "{err}"
        );
    }

    #[test]
    fn missing_password_fails() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let err = keys.unlock("alice", None).unwrap_err();
        assert!(matches!(err, KeystoreError::PasswordRequired { ref name } if name == "alice"));
        assert!(matches!(
            keys.export("alice", None),
            Err(KeystoreError::PasswordRequired { .. })
        ));
    }

    #[test]
    fn empty_password_is_refused() {
        let (_tmp, keys) = keystore();
        let err = keys.import("alice", SEED, password("")).unwrap_err();
        assert!(matches!(err, KeystoreError::EmptyPassword { .. }), "{err}");
        assert!(matches!(
            keys.info("alice"),
            Err(KeystoreError::NotFound { .. })
        ));
    }

    #[test]
    fn tampered_encrypted_fields_fail_to_decrypt() {
        for pointer in [
            "/crypto/ciphertext",
            "/crypto/nonce",
            "/crypto/kdf_params/salt",
        ] {
            let (_tmp, keys) = keystore();
            keys.import("alice", SEED, password("pw")).unwrap();
            let mut file = read_json(&keys, "alice");
            flip_hex(&mut file, pointer);
            write_json(&keys, "alice", &file);
            let err = keys.unlock("alice", Some("pw")).unwrap_err();
            assert!(
                matches!(err, KeystoreError::WrongPassword { .. }),
                "{pointer}: {err}"
            );
        }
        // The tag is the last 16 bytes of `ciphertext`.
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let mut file = read_json(&keys, "alice");
        let ciphertext = file["crypto"]["ciphertext"].as_str().unwrap();
        let flipped_last = if ciphertext.ends_with('0') { "1" } else { "0" };
        let tampered = format!("{}{flipped_last}", &ciphertext[..ciphertext.len() - 1]);
        file["crypto"]["ciphertext"] = Value::String(tampered);
        write_json(&keys, "alice", &file);
        let err = keys.unlock("alice", Some("pw")).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{err}");
        // Changed KDF parameters derive another key.
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let mut file = read_json(&keys, "alice");
        file["crypto"]["kdf_params"]["t_cost"] = json!(2);
        write_json(&keys, "alice", &file);
        let err = keys.unlock("alice", Some("pw")).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{err}");
    }

    #[test]
    fn tampered_public_key_fails() {
        let other = hex::encode(public_key_of(&[9; 32]));

        // Encrypted: the public key is authenticated as associated data.
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let mut file = read_json(&keys, "alice");
        file["public_key"] = Value::String(other.clone());
        write_json(&keys, "alice", &file);
        let err = keys.unlock("alice", Some("pw")).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{err}");

        // Plaintext: the seed no longer matches, found even without unlocking.
        let (_tmp, keys) = keystore();
        keys.import("dev", SEED, Protection::InsecurePlaintext)
            .unwrap();
        let mut file = read_json(&keys, "dev");
        file["public_key"] = Value::String(other);
        write_json(&keys, "dev", &file);
        for result in [
            keys.info("dev").map(|_| ()),
            keys.unlock("dev", None).map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(
                matches!(err, KeystoreError::PublicKeyMismatch { .. }),
                "{err}"
            );
        }
        assert!(matches!(
            keys.list(),
            Err(KeystoreError::PublicKeyMismatch { .. })
        ));

        // Not a curve point at all.
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let mut file = read_json(&keys, "alice");
        file["public_key"] = Value::String(format!("02{}", "00".repeat(31)));
        write_json(&keys, "alice", &file);
        let err = keys.info("alice").unwrap_err();
        assert!(matches!(err, KeystoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn swapped_files_fail() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        keys.import("bob", [9; 32], password("pw")).unwrap();
        let alice_path = keys.key_path("alice").unwrap();
        fs::rename(keys.key_path("bob").unwrap(), &alice_path).unwrap();

        // Renamed file: the stored name no longer matches the file name.
        let err = keys.info("alice").unwrap_err();
        match &err {
            KeystoreError::NameMismatch {
                expected, found, ..
            } => assert_eq!((expected.as_str(), found.as_str()), ("alice", "bob")),
            other => panic!("unexpected error: {other}"),
        }
        assert!(
            err.to_string().contains("rename the file to bob.json"),
            "{err}"
        );
        assert!(matches!(
            keys.unlock("alice", Some("pw")),
            Err(KeystoreError::NameMismatch { .. })
        ));

        // Renamed file with the name field edited too: the name is associated data.
        let mut file = read_json(&keys, "alice");
        file["name"] = json!("alice");
        write_json(&keys, "alice", &file);
        assert_eq!(
            keys.info("alice").unwrap().public_key,
            public_key_of(&[9; 32])
        );
        let err = keys.unlock("alice", Some("pw")).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{err}");
    }

    #[test]
    fn duplicate_name_is_refused_and_original_kept() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("first")).unwrap();
        let before = fs::read(keys.key_path("alice").unwrap()).unwrap();
        for result in [
            keys.import("alice", [9; 32], password("second")),
            keys.generate("alice", Protection::InsecurePlaintext),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, KeystoreError::AlreadyExists { .. }), "{err}");
            assert!(
                err.to_string()
                    .starts_with("key \"alice\" already exists in "),
                "{err}"
            );
        }
        assert_eq!(fs::read(keys.key_path("alice").unwrap()).unwrap(), before);
        assert_eq!(keys.export("alice", Some("first")).unwrap(), SEED);
    }

    #[test]
    fn publish_never_replaces_an_existing_file() {
        // The race-free check at the end of a write, not just the early one.
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let path = keys.key_path("alice").unwrap();
        let before = fs::read(&path).unwrap();
        let err = keys.write_new("alice", &path, b"{}").unwrap_err();
        assert!(matches!(err, KeystoreError::AlreadyExists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(
            fs::read_dir(keys.dir()).unwrap().count(),
            1,
            "temporary file left over"
        );
    }

    #[test]
    fn invalid_names_are_rejected() {
        let (_tmp, keys) = keystore();
        let long = "a".repeat(65);
        for name in [
            "",
            "a b",
            "../evil",
            "a/b",
            "a.json",
            "é",
            "tab\t",
            ".hidden",
            long.as_str(),
        ] {
            let expect_invalid = |result: Result<()>| {
                let err = result.unwrap_err();
                assert!(
                    matches!(err, KeystoreError::InvalidName { .. }),
                    "{name:?}: {err}"
                );
                assert!(
                    err.to_string()
                        .starts_with(&format!("invalid key name {name:?}"))
                );
            };
            expect_invalid(validate_name(name));
            expect_invalid(
                keys.generate(name, Protection::InsecurePlaintext)
                    .map(|_| ()),
            );
            expect_invalid(keys.import(name, SEED, password("pw")).map(|_| ()));
            expect_invalid(keys.info(name).map(|_| ()));
            expect_invalid(keys.unlock(name, None).map(|_| ()));
            expect_invalid(keys.export(name, None).map(|_| ()));
            expect_invalid(keys.key_path(name).map(|_| ()));
        }
        assert!(keys.list().unwrap().is_empty());

        let longest = "Z".repeat(64);
        for name in ["a", "A-z_0-9", "-", "_", longest.as_str()] {
            keys.generate(name, Protection::InsecurePlaintext).unwrap();
            assert_eq!(keys.info(name).unwrap().name, name);
        }
    }

    #[test]
    fn not_found() {
        let (_tmp, keys) = keystore();
        let err = keys.info("alice").unwrap_err();
        assert!(matches!(err, KeystoreError::NotFound { .. }));
        let expected = format!("key \"alice\" not found in {}", keys.dir().display());
        assert!(err.to_string().starts_with(&expected), "{err}");
        assert!(matches!(
            keys.unlock("alice", None),
            Err(KeystoreError::NotFound { .. })
        ));
    }

    #[test]
    fn list_is_sorted_and_ignores_other_files() {
        let (_tmp, keys) = keystore();
        for name in ["charlie", "alice", "bob-2", "Bob", "bob"] {
            keys.generate(name, Protection::InsecurePlaintext).unwrap();
        }
        keys.import("dave", SEED, password("pw")).unwrap();
        fs::write(keys.dir().join("notes.txt"), "not a key").unwrap();
        fs::write(keys.dir().join("bad name.json"), "not a key either").unwrap();
        fs::write(keys.dir().join(".alice.json.0123.tmp"), "leftover").unwrap();
        fs::create_dir(keys.dir().join("sub.json")).unwrap();

        let listed = keys.list().unwrap();
        let names: Vec<_> = listed.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["Bob", "alice", "bob", "bob-2", "charlie", "dave"]);
        assert_eq!(listed[5], keys.info("dave").unwrap());
        assert!(listed[5].encrypted);
        assert!(!listed[0].encrypted);
    }

    #[test]
    fn empty_keystore_lists_nothing() {
        let (_tmp, keys) = keystore();
        assert_eq!(keys.list().unwrap(), []);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_0600_and_new_directory_0700() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("home").join("keys");
        let keys = Keystore::with_kdf(&dir, FAST).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        keys.generate("alice", password("pw")).unwrap();
        keys.generate("dev", Protection::InsecurePlaintext).unwrap();
        assert_eq!(mode(&keys.key_path("alice").unwrap()), 0o600);
        assert_eq!(mode(&keys.key_path("dev").unwrap()), 0o600);
        // Only the two keys: no temporary files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
    }

    #[test]
    fn open_rejects_a_file_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("keys");
        fs::write(&file, "").unwrap();
        let err = Keystore::open(&file).unwrap_err();
        assert!(matches!(err, KeystoreError::NotADirectory { .. }), "{err}");
        // Reopening an existing directory keeps its keys.
        let (tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let reopened = Keystore::open(&tmp.path().join("keys")).unwrap();
        assert_eq!(reopened.export("alice", Some("pw")).unwrap(), SEED);
    }

    #[test]
    fn corrupt_json_is_a_typed_error_naming_the_file() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let path = keys.dir().join("broken.json");
        fs::write(&path, "{ not json").unwrap();
        for result in [
            keys.info("broken").map(|_| ()),
            keys.unlock("broken", Some("pw")).map(|_| ()),
            keys.list().map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, KeystoreError::Corrupt { path: ref p, .. } if *p == path));
            let message = err.to_string();
            let expected = format!("key file {} is corrupt: invalid JSON", path.display());
            assert!(message.starts_with(&expected), "{message}");
        }
    }

    #[test]
    fn malformed_files_are_corrupt_not_panics() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        keys.import("dev", SEED, Protection::InsecurePlaintext)
            .unwrap();
        let encrypted = read_json(&keys, "alice");
        let mut plaintext = read_json(&keys, "dev");
        // The cases are written as alice.json.
        plaintext["name"] = json!("alice");
        let edit = |base: &Value, pointer: &str, new: Value| {
            let mut value = base.clone();
            *value.pointer_mut(pointer).unwrap() = new;
            value
        };
        let add = |base: &Value, object: &str, field: &str| {
            let mut value = base.clone();
            let target = if object.is_empty() {
                &mut value
            } else {
                &mut value[object]
            };
            target
                .as_object_mut()
                .unwrap()
                .insert(field.to_owned(), json!(1));
            value
        };
        let remove = |base: &Value, field: &str| {
            let mut value = base.clone();
            value.as_object_mut().unwrap().remove(field);
            value
        };
        let cases = [
            json!([]),
            json!("alice"),
            json!(null),
            remove(&encrypted, "version"),
            remove(&encrypted, "insecure_plaintext"),
            remove(&encrypted, "crypto"),
            remove(&plaintext, "seed"),
            edit(&encrypted, "/version", json!("1")),
            edit(&encrypted, "/version", json!(-1)),
            edit(&encrypted, "/insecure_plaintext", json!(true)),
            edit(&plaintext, "/insecure_plaintext", json!(false)),
            edit(&encrypted, "/name", json!("not valid!")),
            edit(&encrypted, "/public_key", json!("abcd")),
            edit(&encrypted, "/public_key", json!(42)),
            edit(&encrypted, "/crypto/kdf", json!("scrypt")),
            edit(&encrypted, "/crypto/cipher", json!("aes-256-gcm")),
            edit(&encrypted, "/crypto/nonce", json!("zz")),
            edit(&encrypted, "/crypto/ciphertext", json!("00")),
            edit(&encrypted, "/crypto/kdf_params/salt", json!("")),
            edit(&encrypted, "/crypto/kdf_params/m_cost", json!(u32::MAX)),
            edit(&encrypted, "/crypto/kdf_params/m_cost", json!(0)),
            edit(&encrypted, "/crypto/kdf_params/t_cost", json!(0)),
            edit(&encrypted, "/crypto/kdf_params/p_cost", json!(-3)),
            add(&encrypted, "crypto", "extra"),
            edit(&plaintext, "/seed", json!("not hex")),
            add(&plaintext, "", "unknown_field"),
        ];
        for (i, case) in cases.iter().enumerate() {
            write_json(&keys, "alice", case);
            let err = keys.unlock("alice", Some("pw")).unwrap_err();
            assert!(
                matches!(err, KeystoreError::Corrupt { .. }),
                "case {i}: {err}"
            );
            assert!(matches!(
                keys.info("alice"),
                Err(KeystoreError::Corrupt { .. })
            ));
        }

        // Both a seed and a crypto object.
        let mut both = encrypted.clone();
        both["seed"] = plaintext["seed"].clone();
        write_json(&keys, "alice", &both);
        assert!(matches!(
            keys.info("alice"),
            Err(KeystoreError::Corrupt { .. })
        ));

        // Oversized and non-UTF-8 files.
        let path = keys.key_path("alice").unwrap();
        fs::write(&path, vec![b' '; 100 * 1024]).unwrap();
        let err = keys.info("alice").unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            keys.info("alice"),
            Err(KeystoreError::Corrupt { .. })
        ));
        fs::write(&path, "").unwrap();
        assert!(matches!(
            keys.info("alice"),
            Err(KeystoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn newer_format_version_is_unsupported() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let mut file = read_json(&keys, "alice");
        file["version"] = json!(2);
        file["something_new"] = json!(true);
        write_json(&keys, "alice", &file);
        let err = keys.info("alice").unwrap_err();
        assert!(
            matches!(err, KeystoreError::UnsupportedVersion { version: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("upgrade poi"), "{err}");
    }

    #[test]
    fn parse_seed_hex_accepts_64_hex_chars_only() {
        let text = hex::encode(SEED);
        assert_eq!(parse_seed_hex(&text).unwrap(), SEED);
        assert_eq!(
            parse_seed_hex(&format!("  {}\n", text.to_uppercase())).unwrap(),
            SEED
        );

        let secretish = format!("{}xy", &text[..62]);
        let too_short = &text[..63];
        let too_long = format!("{text}00");
        for bad in [
            secretish.as_str(),
            too_short,
            too_long.as_str(),
            "",
            "0x1234",
            "é",
        ] {
            let err = parse_seed_hex(bad).unwrap_err();
            assert!(
                matches!(err, KeystoreError::InvalidSeed { .. }),
                "{bad:?}: {err}"
            );
            let message = err.to_string();
            assert!(message.starts_with("invalid seed: "), "{message}");
            assert!(message.contains("64 hex characters"), "{message}");
            if bad.len() > 4 {
                assert!(
                    !message.contains(bad),
                    "the seed must not be echoed: {message}"
                );
            }
        }
        assert!(
            parse_seed_hex(too_short)
                .unwrap_err()
                .to_string()
                .contains("found 63")
        );
    }

    #[test]
    fn messages_are_lowercase_and_secrets_redacted() {
        let (_tmp, keys) = keystore();
        keys.import("alice", SEED, password("pw")).unwrap();
        let errors = [
            keys.info("nobody").unwrap_err(),
            keys.unlock("alice", None).unwrap_err(),
            keys.unlock("alice", Some("nope")).unwrap_err(),
            keys.import("alice", SEED, password("pw")).unwrap_err(),
            keys.info("bad name").unwrap_err(),
            parse_seed_hex("12").unwrap_err(),
        ];
        for err in errors {
            let message = err.to_string();
            let first = message.chars().next().unwrap();
            assert!(first.is_lowercase(), "{message}");
        }
        let debug = format!("{:?}", password("very secret"));
        assert!(!debug.contains("very secret"), "{debug}");
    }

    #[test]
    fn wipe_string_clears_the_buffer() {
        let mut text = String::with_capacity(64);
        text.push_str("secret");
        wipe_string(&mut text);
        assert!(text.is_empty());
        let mut bytes = [1u8; 4];
        wipe(&mut bytes);
        assert_eq!(bytes, [0; 4]);
    }
}
