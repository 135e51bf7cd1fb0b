//! RocksDB may be linked from a prebuilt static library (`ROCKSDB_LIB_DIR`, see
//! `tools/fuzz-build.sh`) instead of being compiled again for the fuzz build; that
//! library needs the C++ runtime, which the from-source build would have linked.
fn main() {
    println!("cargo:rerun-if-env-changed=ROCKSDB_LIB_DIR");
    if std::env::var_os("ROCKSDB_LIB_DIR").is_some() {
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }
}
