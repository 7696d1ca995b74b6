//! Compiles LND's API definitions (`proto/lnd/`, LND v0.20.3-beta, unmodified) into the Rust
//! types and gRPC services of `invoiced lnd-api` (tonic and prost), and their JSON as LND's
//! REST gateway writes it (pbjson: field names as in the definitions, 64-bit integers as
//! strings, bytes in base64, enums by name, fields at their defaults included). protox compiles
//! the definitions, so no `protoc` is needed.
//!
//! It also names the commit the binaries are built from (`INVOICED_GIT_COMMIT`, which
//! `--version` prints): see [`git_commit`].

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/lnd/lightning.proto",
        "proto/lnd/invoices.proto",
        "proto/lnd/router.proto",
    ];
    let descriptors = protox::compile(protos, ["proto/lnd"])?;
    let encoded = descriptors.encode_to_vec();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".lnrpc", ".invoicesrpc", ".routerrpc"])?;
    println!("cargo:rerun-if-changed=proto/lnd");
    let commit = git_commit();
    println!("cargo:rustc-env=INVOICED_GIT_COMMIT={commit}");
    Ok(())
}

/// The commit the binaries are built from: `INVOICED_GIT_COMMIT` when the builder sets it
/// (`scripts/package.sh` does, and so can a build from a source tarball); else git's
/// abbreviated HEAD of this checkout (12 digits), with `-dirty` when tracked files differ from it
/// as this script runs; else `unknown` (no git, or a tree that is not this project's own
/// checkout). The script runs again when HEAD or the branch it points to moves.
fn git_commit() -> String {
    println!("cargo:rerun-if-env-changed=INVOICED_GIT_COMMIT");
    if let Some(given) = std::env::var("INVOICED_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
    {
        return given;
    }
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["--no-optional-locks"])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    // Only this project's own checkout: not a parent repository the sources were unpacked in.
    let own =
        git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| same_dir(Path::new(&top), &root));
    if !own {
        return "unknown".to_owned();
    }
    // HEAD, the ref it names (a file, or a line of packed-refs): what moves on commit or checkout.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = root.join(path);
            // A missing path would make cargo run this script on every build.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty()) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{commit}-dirty"),
        _ => commit,
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
