//! Finds libweightbus: `$WEIGHTBUS_LIB_DIR`, else pkg-config's `weightbus.pc` (searched along
//! `$PKG_CONFIG_PATH`), else the linker's default paths.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WEIGHTBUS_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rustc-link-lib=dylib=weightbus");
    match lib_dir() {
        Some(dir) => {
            println!("cargo:rustc-link-search=native={}", dir.display());
            // This crate's tests and examples then run against the library they linked, without
            // LD_LIBRARY_PATH. (A crate depending on this one sets its own rpath or installs the library.)
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
        None => println!(
            "cargo:warning=weightbus: neither WEIGHTBUS_LIB_DIR nor `pkg-config weightbus` names the library; \
             trying the linker's default paths"
        ),
    }
}

fn lib_dir() -> Option<PathBuf> {
    env::var_os("WEIGHTBUS_LIB_DIR").map(PathBuf::from).or_else(pkg_config_lib_dir)
}

/// `pkg-config --variable=libdir weightbus`: None when pkg-config or the .pc file is missing.
fn pkg_config_lib_dir() -> Option<PathBuf> {
    let output = Command::new("pkg-config").args(["--variable=libdir", "weightbus"]).output().ok()?;
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = dir.trim();
    if !output.status.success() || dir.is_empty() {
        return None;
    }
    Some(PathBuf::from(dir))
}
