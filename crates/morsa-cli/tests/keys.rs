//! `morsa key` as a user drives it: shares that Trezor's reference implementation
//! (`shamir-mnemonic` from PyPI) recovers to the same root, drills, and every way shares or
//! passphrases can be wrong failing with a clear error, exit code 1 and the keyring untouched.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::keys::{Machine, assert_fails};

fn machine(dir: &std::path::Path, name: &str) -> Machine {
    Machine::new(&dir.join(name), &dir.join("no-client.toml"))
}

fn split(machine: &Machine, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["key", "split", "--shares", "5", "--threshold", "3", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&machine.ok(&args)).unwrap()
}

fn key_check(machine: &Machine) -> String {
    let shown: serde_json::Value = serde_json::from_str(&machine.ok(&["key", "show", "--json"])).unwrap();
    shown["key_check"].as_str().unwrap().to_string()
}

#[test]
fn shares_combine_with_the_reference_implementation_and_a_drill_passes() {
    let dir = tempfile::tempdir().unwrap();
    let alice = machine(dir.path(), "alice");
    alice.ok(&["key", "init"]);
    let shares = split(&alice, &[]);
    assert_eq!(shares.len(), 5);
    assert!(shares.iter().all(|share| share.split(' ').count() == 36), "{shares:?}");
    let check = key_check(&alice);

    // Trezor's package combines three shares; the secret is the root and its key-check
    // value, which Python derives again from the root on its own (HKDF-SHA256 from HMAC).
    let script = r#"
import sys, json, hmac, hashlib
from shamir_mnemonic import combine_mnemonics
shares = json.loads(sys.stdin.read())
secret = combine_mnemonics(shares, b"")
root, check = secret[:32], secret[32:]
prk = hmac.new(b"morsa-keys-v1", root, hashlib.sha256).digest()
derived = hmac.new(prk, b"key-check\x01", hashlib.sha256).digest()[:4]
assert derived == check, (derived.hex(), check.hex())
print(check.hex())
"#;
    let mut python = Command::new("python3");
    python.args(["-c", script]);
    let picked = serde_json::to_string(&[&shares[4], &shares[0], &shares[2]]).unwrap();
    let output = common::keys::run_with_input(python, &picked);
    assert!(
        output.status.success(),
        "python3 shamir_mnemonic (installed by .ci/install-tools): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), check);

    let drill = alice.run(&["key", "drill"], &format!("{}\n{}\n{}\n", shares[1], shares[3], shares[4]));
    assert!(drill.status.success(), "{}", String::from_utf8_lossy(&drill.stderr));
    assert!(String::from_utf8_lossy(&drill.stdout).contains(&format!("key check {check}")));

    // Rotation keeps the shares valid, and a recovery told the generations rebuilds both.
    alice.ok(&["key", "rotate"]);
    let identities = alice.ok(&["key", "age-identity", "--all"]);
    assert_eq!(identities.matches("AGE-SECRET-KEY-1").count(), 2);
    let bob = machine(dir.path(), "bob");
    let recovered = bob.run(&["key", "recover", "--generations", "2"], &shares[..3].join("\n"));
    assert!(recovered.status.success(), "{}", String::from_utf8_lossy(&recovered.stderr));
    assert_eq!(bob.ok(&["key", "age-identity", "--all"]), identities);
}

#[test]
fn wrong_shares_and_passphrases_fail_clearly_and_touch_no_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let alice = machine(dir.path(), "alice");
    alice.ok(&["key", "init"]);
    let keyring = std::fs::read(alice.keyring()).unwrap();
    let shares = split(&alice, &[]);
    let other = machine(dir.path(), "other");
    other.ok(&["key", "init"]);
    let foreign = split(&other, &[]);
    let mut corrupted = shares[1].split(' ').map(String::from).collect::<Vec<_>>();
    corrupted[6] = if corrupted[6] == "academic" { "acid".into() } else { "academic".into() };
    let corrupted = corrupted.join(" ");

    let fresh = machine(dir.path(), "fresh");
    for (given, expected) in [
        (vec![&shares[0], &shares[1]], "the threshold is 3"),
        (vec![&shares[0], &shares[1], &foreign[2]], "not from the same split"),
        (vec![&shares[0], &corrupted, &shares[2]], "share 2 fails its checksum"),
        (vec![&shares[0], &shares[0], &shares[2]], "same index"),
    ] {
        let input = given.iter().map(|share| share.as_str()).collect::<Vec<_>>().join("\n");
        assert_fails(&fresh.run(&["key", "recover"], &input), expected);
        assert!(!fresh.keyring().exists(), "no keyring written after {expected:?}");
        assert_fails(&alice.run(&["key", "drill"], &input), expected);
    }

    // A wrong share passphrase is caught by the key-check value, not taken for another root.
    let protected = {
        let mut command = alice.command(&["key", "split", "--shares", "3", "--threshold", "2", "--json"]);
        command.env("MORSA_SHARE_PASSPHRASE", "share secret");
        let output = common::keys::run_with_input(command, "");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Vec<String>>(&output.stdout).unwrap()
    };
    let mut recover = fresh.command(&["key", "recover"]);
    recover.env("MORSA_SHARE_PASSPHRASE", "not the share secret");
    assert_fails(
        &common::keys::run_with_input(recover, &protected[..2].join("\n")),
        "key-check value does not match",
    );
    assert!(!fresh.keyring().exists());

    // A wrong keyring passphrase: refused, keyring as it was.
    for args in
        [&["key", "split", "--shares", "3", "--threshold", "2"][..], &["key", "passwd"], &["key", "rotate"]]
    {
        let mut command = alice.command(args);
        command.env("MORSA_KEY_PASSPHRASE", "wrong");
        assert_fails(&common::keys::run_with_input(command, ""), "wrong passphrase");
        assert_eq!(std::fs::read(alice.keyring()).unwrap(), keyring, "{args:?}");
    }
    // Recovering over an existing keyring is refused.
    assert_fails(&alice.run(&["key", "recover"], &shares[..3].join("\n")), "already exists");
    assert_eq!(std::fs::read(alice.keyring()).unwrap(), keyring);
    // And the right shares do recover.
    let recovered = fresh.run(&["key", "recover"], &shares[2..].join("\n"));
    assert!(recovered.status.success(), "{}", String::from_utf8_lossy(&recovered.stderr));
    assert_eq!(key_check(&fresh), key_check(&alice));
}
