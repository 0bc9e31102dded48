//! `poi keys ...`.

use std::io::Read;

use anyhow::{Context, bail};
use poi_core::Address;
use serde_json::json;

use crate::cli::{Global, KeysCmd};
use crate::client::home;
use crate::keystore::{self, Keystore, Protection};
use crate::output;

/// The keystore in HOME/keys.
pub(crate) fn open(global: &Global) -> anyhow::Result<Keystore> {
    Ok(Keystore::open(&home(global).keys_dir())?)
}

/// The password for a key: --password-file, then $POI_PASSWORD, then a prompt on a terminal.
pub(crate) fn password(global: &Global, prompt: &str, confirm: bool) -> anyhow::Result<String> {
    if let Some(path) = &global.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {}", path.display()))?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    if let Ok(password) = std::env::var("POI_PASSWORD") {
        return Ok(password);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("a password is needed; pass --password-file FILE or set POI_PASSWORD");
    }
    let first = rpassword::prompt_password(prompt).context("cannot read password")?;
    if confirm {
        let second =
            rpassword::prompt_password("Repeat password: ").context("cannot read password")?;
        if first != second {
            bail!("passwords do not match");
        }
    }
    Ok(first)
}

fn protection(global: &Global, insecure_plaintext: bool) -> anyhow::Result<Protection> {
    if insecure_plaintext {
        return Ok(Protection::InsecurePlaintext);
    }
    Ok(Protection::Password(password(
        global,
        "New key password: ",
        true,
    )?))
}

/// Unlocks a key, asking for a password only if it is encrypted.
pub(crate) fn unlock(global: &Global, name: &str) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let store = open(global)?;
    let info = store.info(name)?;
    let password = if info.encrypted {
        Some(password(global, &format!("Password for {name}: "), false)?)
    } else {
        None
    };
    Ok(store.unlock(name, password.as_deref())?)
}

/// The address of a key name, or the address itself.
pub(crate) fn resolve_address(global: &Global, text: &str) -> anyhow::Result<Address> {
    match text.parse::<Address>() {
        Ok(address) => Ok(address),
        Err(parse_error) => {
            if keystore::validate_name(text).is_ok()
                && let Ok(info) = open(global).and_then(|s| Ok(s.info(text)?))
            {
                return Ok(Address(info.public_key));
            }
            Err(parse_error.into())
        }
    }
}

pub(crate) fn run(global: &Global, cmd: KeysCmd) -> anyhow::Result<()> {
    let store = open(global)?;
    match cmd {
        KeysCmd::New {
            name,
            insecure_plaintext,
        } => {
            keystore::validate_name(&name)?;
            let info = store.generate(&name, protection(global, insecure_plaintext)?)?;
            print_info(global, &info);
        }
        KeysCmd::List => {
            let keys = store.list()?;
            if global.json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| json!({"name": k.name, "address": Address(k.public_key), "encrypted": k.encrypted}))
                    .collect();
                output::json(&json!(list));
            } else {
                for key in keys {
                    println!("{}", key.name);
                }
            }
        }
        KeysCmd::Show { name, address } => {
            let info = store.info(&name)?;
            if address {
                println!("{}", Address(info.public_key));
            } else {
                print_info(global, &info);
            }
        }
        KeysCmd::Import {
            name,
            seed_file,
            insecure_plaintext,
        } => {
            keystore::validate_name(&name)?;
            let text = match seed_file {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read seed file {}", path.display()))?,
                None => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("cannot read standard input")?;
                    text
                }
            };
            let seed = keystore::parse_seed_hex(&text)?;
            let info = store.import(&name, seed, protection(global, insecure_plaintext)?)?;
            print_info(global, &info);
        }
        KeysCmd::Export { name } => {
            let info = store.info(&name)?;
            let password = if info.encrypted {
                Some(password(global, &format!("Password for {name}: "), false)?)
            } else {
                None
            };
            let seed = store.export(&name, password.as_deref())?;
            eprintln!(
                "warning: anyone with this seed controls {}",
                Address(info.public_key)
            );
            println!("{}", hex::encode(seed));
        }
    }
    Ok(())
}

fn print_info(global: &Global, info: &keystore::KeyInfo) {
    let address = Address(info.public_key);
    if global.json {
        output::json(&json!({
            "name": info.name,
            "address": address,
            "public_key": hex::encode(info.public_key),
            "encrypted": info.encrypted,
        }));
    } else {
        println!("name:       {}", info.name);
        println!("address:    {address}");
        println!("public key: {}", hex::encode(info.public_key));
        println!(
            "encrypted:  {}",
            if info.encrypted {
                "yes"
            } else {
                "NO (devnet only)"
            }
        );
    }
}
