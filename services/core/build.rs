//! Compiles `proto/` with prost. A fresh machine has no protoc, so the
//! vendored one is used unless `$PROTOC` names another. Also rebuilds the
//! crate when `migrations/` changes, which `db.rs` embeds.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded.
        #[expect(unsafe_code, reason = "set_var before any thread exists")]
        unsafe {
            std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?)
        };
    }
    let root = "../../proto";
    let files = [
        "../../proto/courier/v1/content.proto",
        "../../proto/courier/v1/events.proto",
        "../../proto/courier/v1/work.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    // `db.rs` embeds the migrations: a new one must rebuild this crate.
    println!("cargo:rerun-if-changed=../../migrations");
    prost_build::compile_protos(&files, &[root])?;
    Ok(())
}
