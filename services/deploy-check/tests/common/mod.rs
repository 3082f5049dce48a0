//! Shared by the test binaries: where the repository is and who the NATS
//! users are.

use std::path::{Path, PathBuf};

/// The repository root (this crate is `services/deploy-check`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The file with the NATS users and their permissions.
pub const AUTHORIZATION: &str = "deploy/nats/authorization.conf";

/// `(user, password)` of every user in [`AUTHORIZATION`], in file order.
/// Reads the `user:` / `password:` lines; the file keeps one per line.
pub fn nats_users() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join(AUTHORIZATION)).expect(AUTHORIZATION);
    let mut users = Vec::new();
    let mut user = None;
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if let Some(name) = line.strip_prefix("user:") {
            user = Some(name.trim().to_owned());
        } else if let Some(password) = line.strip_prefix("password:") {
            let name = user.take().expect("a password follows its user");
            users.push((name, password.trim().to_owned()));
        }
    }
    assert!(!users.is_empty(), "no users in {AUTHORIZATION}");
    users
}

/// The password of `user` in [`AUTHORIZATION`].
pub fn password(user: &str) -> String {
    nats_users()
        .into_iter()
        .find(|(name, _)| name == user)
        .unwrap_or_else(|| panic!("no NATS user {user} in {AUTHORIZATION}"))
        .1
}
