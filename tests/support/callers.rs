//! A callers file as Kubernetes mounts a Secret: the file is a symlink through `..data`, and an
//! update writes a new directory and swaps `..data` to it in one rename, so a reader sees the old
//! file or the new one, never half of one.

use std::path::{Path, PathBuf};

use sha2::Digest as _;

/// The file's name inside the mounted directory.
const FILE: &str = "callers.yaml";

/// A mounted callers file in a temporary directory.
pub struct CallersMount {
    dir: tempfile::TempDir,
    generation: u32,
}

impl CallersMount {
    /// Mounts `content`.
    pub fn new(content: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut mount = Self { dir, generation: 0 };
        mount.write_generation(content);
        std::os::unix::fs::symlink(Path::new("..data").join(FILE), mount.path()).unwrap();
        mount
    }

    /// The path the gateway is given (`PROVE_GATEWAY_CALLERS_FILE`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(FILE)
    }

    /// Replaces the content as the kubelet does: a new directory, then `..data` swapped to it
    /// by a rename, then the old directory removed.
    pub fn update(&mut self, content: &str) {
        let old = self.generation_dir(self.generation);
        self.write_generation(content);
        std::fs::remove_dir_all(old).unwrap();
    }

    fn generation_dir(&self, generation: u32) -> PathBuf {
        self.dir.path().join(format!("..gen_{generation}"))
    }

    /// Writes `content` into a new generation and points `..data` at it.
    fn write_generation(&mut self, content: &str) {
        self.generation += 1;
        let dir = self.generation_dir(self.generation);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(FILE), content).unwrap();
        let staged = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(dir.file_name().unwrap(), &staged).unwrap();
        std::fs::rename(&staged, self.dir.path().join("..data")).unwrap();
    }
}

/// The SHA-256 of `token` in lowercase hex, as `token_sha256` lists it (computed here, not by
/// the gateway's code, so a wrong digest in the gateway cannot agree with itself).
pub fn token_sha256(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One entry of a callers file: `name`, authenticated by bearer `token`, allowed `allow`.
pub fn caller(name: &str, token: &str, allow: &[&str]) -> String {
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "  - name: {name}\n    token_sha256: [\"{}\"]\n    allow: [{}]\n",
        token_sha256(token),
        allow.join(", ")
    )
}

/// A callers file of `entries` (made with [`caller`]).
pub fn callers_file(entries: &[String]) -> String {
    format!("callers:\n{}", entries.concat())
}

/// `request` with `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}
