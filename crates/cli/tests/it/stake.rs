//! `poi stake` against a devnet: bond reaches a tier, unbond names its release height, an early
//! withdrawal is one typed error line, and `show --json` agrees with the API.

use crate::{Node, one_error_line, poi, stdout_of};

#[test]
fn stake_bond_unbond_show_and_an_early_withdraw() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let node = Node::devnet(&home, dir.path());
    let home_arg = home.to_str().expect("utf-8 path");
    let alice = stdout_of(poi().args(["keys", "show", "alice", "--home", home_arg, "--address"]));
    let alice = alice.trim_end();

    let bonded = stdout_of(poi().args([
        "stake", "bond", "--home", home_arg, "--from", "alice", "--amount", "40poi",
    ]));
    assert!(bonded.starts_with("committed "), "{bonded}");
    assert!(bonded.contains("bonded 40 POI"), "{bonded}");
    assert!(bonded.contains("tier:      0"), "{bonded}");
    // Tier 2 needs 1,000 POI bonded: `stake tier 2` bonds the missing 960.
    let tiered =
        stdout_of(poi().args(["stake", "tier", "2", "--home", home_arg, "--from", "alice"]));
    assert!(
        tiered.contains("bonded 960 POI to reach tier 2"),
        "{tiered}"
    );
    assert!(tiered.contains("tier:      2"), "{tiered}");
    let again =
        stdout_of(poi().args(["stake", "tier", "1", "--home", home_arg, "--from", "alice"]));
    assert!(again.starts_with("already at tier 2"), "{again}");
    let refused = poi()
        .args(["stake", "tier", "9", "--home", home_arg, "--from", "alice"])
        .output()
        .expect("run poi stake tier");
    assert!(one_error_line(&refused).contains("tier 9 does not exist"));

    let unbonded = stdout_of(poi().args([
        "stake", "unbond", "--home", home_arg, "--from", "alice", "--amount", "1poi",
    ]));
    assert!(unbonded.contains("withdrawable from height"), "{unbonded}");
    assert!(unbonded.contains("tier:      1"), "{unbonded}");

    let refused = poi()
        .args(["stake", "withdraw", "--home", home_arg, "--from", "alice"])
        .output()
        .expect("run poi stake withdraw");
    let line = one_error_line(&refused);
    assert!(line.contains("nothing_to_withdraw"), "{line}");
    assert!(line.contains("released at height"), "{line}");

    let shown = stdout_of(poi().args(["stake", "show", alice, "--home", home_arg, "--json"]));
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("--json is JSON");
    assert_eq!(shown["bonded"], "999000000000");
    assert_eq!(shown["unbonding"][0]["amount"], "1000000000");
    let api = node.api.get_ok(&format!("/stake/{alice}"));
    assert_eq!(shown["bonded"], api["bonded"]);
    assert_eq!(shown["tier"], 1);
}
