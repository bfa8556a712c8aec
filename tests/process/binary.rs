//! The release binary the suite runs: `$CI_BRIDGE_BIN`, or `target/release/ci-bridge`
//! brought up to date once per test run with `cargo build --release`.

use std::{ffi::OsStr, path::PathBuf, process::Command, sync::OnceLock};

/// Names a ci-bridge binary to run instead of building one.
pub const BIN_ENV: &str = "CI_BRIDGE_BIN";

/// The binary's path. The first call builds it (cargo does nothing when it is current);
/// a failed build fails every test with the reason.
pub fn path() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(locate) {
        Ok(path) => path.clone(),
        Err(reason) => panic!("{reason}"),
    }
}

fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{BIN_ENV}={} is not a file", path.display()))
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--release", "--quiet", "-p", "ci-bridge", "--bin"])
        .args(["ci-bridge", "--manifest-path", manifest]);
    // What cargo sets for this test process would otherwise reach build scripts that
    // watch it (ring's watches CARGO_MANIFEST_DIR) and rebuild the binary every run.
    for (name, _) in std::env::vars_os() {
        if set_by_cargo_test(&name) {
            build.env_remove(name);
        }
    }
    let status = build.status().map_err(|e| {
        format!("cannot run {cargo:?} to build the release binary ({e}); set {BIN_ENV}")
    })?;
    if !status.success() {
        return Err(format!(
            "`cargo build --release -p ci-bridge --bin ci-bridge` failed ({status}); \
             fix the build, or set {BIN_ENV} to a ci-bridge binary"
        ));
    }
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`, so this follows CARGO_TARGET_DIR too.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or("CARGO_TARGET_TMPDIR has no parent")?;
    let binary = target.join("release").join("ci-bridge");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("cargo built, but {} is missing", binary.display()))
    }
}

/// The variables cargo sets for the test binary it runs, not for a shell.
fn set_by_cargo_test(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("CARGO_PKG_")
        || matches!(
            name.as_ref(),
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_BIN_NAME"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}
