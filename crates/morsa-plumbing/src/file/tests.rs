//! What a reader of the written files sees. (That the fsyncs happen, and in order, cannot be
//! observed without a crash; `morsa-store`'s crash tests cover the engines.)

use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn replace_writes_then_replaces_the_content_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    replace(&path, b"first", Access::Shared).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    replace(&path, b"second, longer", Access::Shared).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    replace(&path, b"3", Access::Shared).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"3", "a shorter content leaves no tail");
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(names, ["state.json"]);
}

#[test]
fn replace_recovers_from_a_temporary_file_left_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let leftover = dir.path().join("token.tmp");
    std::fs::write(&leftover, b"half a toke").unwrap();
    std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o666)).unwrap();
    replace(&path, b"secret", Access::Secret).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    assert_eq!(mode(&path), 0o600, "the leftover's mode is not inherited");
    assert!(!leftover.exists());
}

#[test]
fn secrets_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let created = dir.path().join("account.key");
    create_new(&created, b"k", Access::Secret).unwrap();
    assert_eq!(mode(&created), 0o600);
    let replaced = dir.path().join("admin.token");
    replace(&replaced, b"t", Access::Secret).unwrap();
    assert_eq!(mode(&replaced), 0o600);
    // Shared files are readable by others (the test process's umask may remove write bits).
    let shared = dir.path().join("coord.toml");
    create_new(&shared, b"s", Access::Shared).unwrap();
    assert_eq!(mode(&shared) & 0o044, 0o044);
}

#[test]
fn create_new_never_overwrites_and_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/node.key");
    create_new(&path, b"first", Access::Secret).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    let error = create_new(&path, b"second", Access::Secret).unwrap_err();
    assert!(error.already_exists(), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
}

#[test]
fn a_failed_write_names_the_step_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/state.json");
    let error = replace(&path, b"x", Access::Shared).unwrap_err();
    assert_eq!(error.step, WriteStep::Create);
    assert_eq!(error.to_string(), format!("cannot create {}.tmp: {}", path.display(), error.source));
}

#[test]
fn a_bare_file_name_is_synced_in_the_current_directory() {
    assert!(sync_parent(Path::new("no-such-file-in-cwd")).is_ok());
}
