//! Builds the console's browser bundle (the `frontend` crate for wasm32,
//! bound with wasm-bindgen, plus the stylesheet) so the server binary can
//! embed it: any `cargo build` of the server, at the root or with
//! `cargo install --path server`, gives the whole product, and nothing
//! beside the binary is needed to serve a console that hydrates.
//!
//! The bundle's files and their gzip forms go to `$OUT_DIR/console/`; their
//! joint content hash is `KEYWARD_CONSOLE_HASH`, which names them on the
//! wire so a new release is never served from a stale cache.

use sha2::{Digest, Sha256};
use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("server/ sits in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    for watched in ["app", "frontend", "style", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={PREBUILT}");
    let release = env::var("PROFILE").as_deref() == Ok("release");

    let (js, wasm, css) = match env::var_os(PREBUILT) {
        Some(_) if release => fail(&format!(
            "{PREBUILT} is for mutation runs; a release builds its own bundle"
        )),
        Some(dir) => prebuilt(Path::new(&dir)),
        None => bundle(&root, &out_dir, release),
    };

    let dir = out_dir.join("console");
    fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let mut hash = Sha256::new();
    for (name, bytes) in [("keyward.js", &js), ("keyward_bg.wasm", &wasm), ("keyward.css", &css)] {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
        write(&dir.join(name), bytes);
        write(&dir.join(format!("{name}.gz")), &gzip(bytes, release));
    }
    let hash = hash.finalize();
    let short: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=KEYWARD_CONSOLE_HASH={short}");
}

/// A bundle built before, embedded as it is (its directory, as a build of
/// the server left it in `$OUT_DIR/console/`). For `scripts/mutants.sh`,
/// whose mutants change only server-side code: rebuilding the browser
/// crate for each would double the run. Never for a release.
const PREBUILT: &str = "KEYWARD_CONSOLE_PREBUILT";

fn prebuilt(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).unwrap_or_else(|e| fail(&format!("{PREBUILT}: {}: {e}", path.display())))
    };
    (read("keyward.js"), read("keyward_bg.wasm"), read("keyward.css"))
}

/// The browser crate built for wasm32 and bound with wasm-bindgen, and the
/// stylesheet: (JS, wasm, CSS).
fn bundle(root: &Path, out_dir: &Path, release: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    require_wasm_target();
    let wasm = build_frontend(root, out_dir, release);

    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&wasm)
        .out_name("keyward")
        .typescript(false)
        // Function names are for debugging: 2 MB of a 4 MB release bundle.
        .remove_name_section(release)
        .remove_producers_section(release)
        .web(true)
        .expect("wasm-bindgen's web target");
    let mut output = bindgen
        .generate_output()
        .unwrap_or_else(|e| fail(&format!("wasm-bindgen could not bind {}: {e:#}", wasm.display())));
    if output.snippets().values().any(|s| !s.is_empty()) || !output.local_modules().is_empty() {
        fail("the browser bundle now has JS snippets; serve them too (server/src/http/assets.rs) before building");
    }
    let js = output.js().as_bytes().to_vec();
    let wasm = output.wasm_mut().emit_wasm();
    let css = fs::read(root.join("style/main.css")).unwrap_or_else(|e| fail(&format!("style/main.css: {e}")));
    (js, wasm, css)
}

/// Without the wasm32 standard library the browser crate cannot build; say
/// what to run rather than fail deep inside a nested cargo.
fn require_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = sysroot {
        if !sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
            fail(&format!(
                "Keyward's server embeds its browser console, built for {WASM_TARGET}, which this toolchain lacks.\n\
                 Install it with `rustup target add {WASM_TARGET}` (./scripts/run.sh does this), then build again."
            ));
        }
    }
}

/// `cargo build -p frontend` for wasm32, in a target directory of its own:
/// the outer cargo holds its own directory's lock while this runs.
fn build_frontend(root: &Path, out_dir: &Path, release: bool) -> PathBuf {
    // OUT_DIR is <target>/<profile>/build/server-<hash>/out: the sibling of
    // <profile> is shared by debug, release and clippy runs alike.
    let target_dir = out_dir.ancestors().nth(4).unwrap_or(out_dir).join("keyward-console");
    let (profile, profile_dir) = if release {
        ("wasm-release", "wasm-release")
    } else {
        ("dev", "debug")
    };
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "-p",
            "frontend",
            "--lib",
            "--target",
            WASM_TARGET,
            "--profile",
            profile,
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
    // What cargo hands this script describes the host build, not the wasm
    // one: its cfg and features (which the wasm crates' own build scripts
    // would take for theirs), flags, clippy's wrapper, a forced target.
    for (name, _) in env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let host_only = ["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "CARGO_MANIFEST_", "DEP_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_ENCODED_RUSTFLAGS",
                "RUSTFLAGS",
                "RUSTC_WORKSPACE_WRAPPER",
                "RUSTC_LINKER",
                "CARGO_BUILD_TARGET",
                "CARGO_BUILD_RUSTFLAGS",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_CRATE_NAME",
                "TARGET",
                "HOST",
                "OUT_DIR",
                "PROFILE",
                "OPT_LEVEL",
                "DEBUG",
                "NUM_JOBS",
            ]
            .contains(&name.as_str());
        if host_only {
            command.env_remove(&name);
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|e| fail(&format!("could not run cargo for the browser bundle: {e}")));
    if !status.success() {
        fail("building the browser bundle (`cargo build -p frontend --target wasm32-unknown-unknown`) failed; its errors are above");
    }
    target_dir.join(WASM_TARGET).join(profile_dir).join("frontend.wasm")
}

fn gzip(bytes: &[u8], release: bool) -> Vec<u8> {
    let level = if release {
        flate2::Compression::best()
    } else {
        flate2::Compression::fast()
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_else(|e| fail(&format!("gzip: {e}")))
}

fn write(path: &Path, bytes: &[u8]) {
    // Unchanged files keep their time stamps, so rustc does not rebuild the
    // crate that embeds them.
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

fn fail(message: &str) -> ! {
    eprintln!("\nerror: {message}\n");
    std::process::exit(1);
}
