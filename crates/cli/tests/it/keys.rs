//! `poi keys`: new (plaintext and password), list, show, import and export.

use std::path::Path;

use ed25519_dalek::SigningKey;
use poi_core::Address;
use serde_json::Value;

use crate::{one_error_line, poi, stdout_of};

fn key_file(home: &Path, name: &str) -> Value {
    let text =
        std::fs::read_to_string(home.join("keys").join(format!("{name}.json"))).expect("key file");
    serde_json::from_str(&text).expect("key file is JSON")
}

/// The `address:` line of `poi keys show` output.
fn address_line(info: &str) -> String {
    info.lines()
        .find_map(|line| line.strip_prefix("address:"))
        .unwrap_or_else(|| panic!("no address line in {info:?}"))
        .trim()
        .to_string()
}

#[test]
fn keys_new_plaintext_and_with_a_password_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let home_arg = home.to_str().expect("utf-8");
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\nignored second line\n").expect("write");
    let password_arg = password.to_str().expect("utf-8");

    let plain = stdout_of(
        poi()
            .args(["keys", "new", "dev", "--insecure-plaintext"])
            .args(["--home", home_arg]),
    );
    assert!(plain.contains("encrypted:  NO"), "{plain}");
    let file = key_file(&home, "dev");
    assert_eq!(file["insecure_plaintext"], true);
    assert!(
        file["seed"].is_string() && file["crypto"].is_null(),
        "{file}"
    );

    let sealed = stdout_of(
        poi()
            .args(["keys", "new", "vault", "--home", home_arg])
            .args(["--password-file", password_arg]),
    );
    assert!(sealed.contains("encrypted:  yes"), "{sealed}");
    let file = key_file(&home, "vault");
    assert_eq!(file["insecure_plaintext"], false);
    assert!(
        file["seed"].is_null() && file["crypto"].is_object(),
        "{file}"
    );
    assert_eq!(file["crypto"]["kdf"], "argon2id");

    assert_eq!(
        stdout_of(poi().args(["keys", "list", "--home", home_arg])),
        "dev\nvault\n"
    );
    let shown = stdout_of(poi().args(["keys", "show", "vault", "--home", home_arg]));
    let only = stdout_of(poi().args(["keys", "show", "vault", "--address", "--home", home_arg]));
    assert_eq!(only, format!("{}\n", address_line(&sealed)));
    assert_eq!(address_line(&shown), address_line(&sealed));
    let public_key = hex::decode(file["public_key"].as_str().expect("public key")).expect("hex");
    let public_key: [u8; 32] = public_key.try_into().expect("32 bytes");
    assert_eq!(only.trim_end(), Address(public_key).to_string());

    // Names are unique; no password source and no terminal is refused.
    let again = poi()
        .args([
            "keys",
            "new",
            "dev",
            "--insecure-plaintext",
            "--home",
            home_arg,
        ])
        .output()
        .expect("run poi");
    assert!(one_error_line(&again).contains("already exists"));
    let no_password = poi()
        .args(["keys", "new", "other", "--home", home_arg])
        .write_stdin("")
        .output()
        .expect("run poi");
    assert!(one_error_line(&no_password).contains("password"));
    let bad_name = poi()
        .args([
            "keys",
            "new",
            "no spaces",
            "--insecure-plaintext",
            "--home",
            home_arg,
        ])
        .output()
        .expect("run poi");
    assert!(one_error_line(&bad_name).contains("invalid key name"));
    assert_eq!(
        stdout_of(poi().args(["keys", "list", "--home", home_arg])),
        "dev\nvault\n"
    );
}

#[test]
fn keys_show_of_an_unknown_key_names_it_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_str().expect("utf-8");
    stdout_of(poi().args([
        "keys",
        "new",
        "known",
        "--insecure-plaintext",
        "--home",
        home,
    ]));
    for args in [
        &["keys", "show", "ghost"][..],
        &["keys", "show", "ghost", "--address"][..],
        &["keys", "export", "ghost"][..],
    ] {
        let output = poi()
            .args(args)
            .args(["--home", home])
            .output()
            .expect("run poi");
        let line = one_error_line(&output);
        assert!(line.contains("\"ghost\""), "{line}");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
    }
}

#[test]
fn import_and_export_round_trip_the_seed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let home_arg = home.to_str().expect("utf-8");
    let seed = [0x42u8; 32];
    let seed_hex = hex::encode(seed);
    let expected = Address::from_public_key(&SigningKey::from_bytes(&seed).verifying_key());
    let seed_file = dir.path().join("seed.hex");
    std::fs::write(&seed_file, format!("{seed_hex}\n")).expect("write seed");
    let seed_arg = seed_file.to_str().expect("utf-8");
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").expect("write");
    let password_arg = password.to_str().expect("utf-8");

    // Plaintext, from a file.
    let imported = stdout_of(
        poi()
            .args(["keys", "import", "plain", "--seed-file", seed_arg])
            .args(["--insecure-plaintext", "--home", home_arg]),
    );
    assert_eq!(address_line(&imported), expected.to_string());
    let exported = poi()
        .args(["keys", "export", "plain", "--home", home_arg])
        .output()
        .expect("run poi");
    assert!(exported.status.success());
    assert_eq!(
        String::from_utf8_lossy(&exported.stdout),
        format!("{seed_hex}\n")
    );
    let warning = String::from_utf8_lossy(&exported.stderr);
    assert!(warning.contains(&expected.to_string()), "{warning}");

    // Encrypted, from standard input; export needs the same password.
    let imported = stdout_of(
        poi()
            .args(["keys", "import", "sealed", "--home", home_arg])
            .args(["--password-file", password_arg])
            .write_stdin(seed_hex.to_uppercase()),
    );
    assert_eq!(address_line(&imported), expected.to_string());
    assert!(
        !std::fs::read_to_string(home.join("keys/sealed.json"))
            .expect("key file")
            .contains(&seed_hex)
    );
    let exported = stdout_of(
        poi()
            .args(["keys", "export", "sealed", "--home", home_arg])
            .args(["--password-file", password_arg]),
    );
    assert_eq!(exported, format!("{seed_hex}\n"));

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not it\n").expect("write");
    let output = poi()
        .args(["keys", "export", "sealed", "--home", home_arg])
        .args(["--password-file", wrong.to_str().expect("utf-8")])
        .output()
        .expect("run poi");
    one_error_line(&output);
    assert!(
        output.stdout.is_empty(),
        "a wrong password must not print the seed"
    );

    // A seed that is not 64 hex digits is refused and stores nothing.
    let output = poi()
        .args([
            "keys",
            "import",
            "short",
            "--insecure-plaintext",
            "--home",
            home_arg,
        ])
        .write_stdin("abcd")
        .output()
        .expect("run poi");
    assert!(one_error_line(&output).contains("invalid seed"));
    assert_eq!(
        stdout_of(poi().args(["keys", "list", "--home", home_arg])),
        "plain\nsealed\n"
    );
}
