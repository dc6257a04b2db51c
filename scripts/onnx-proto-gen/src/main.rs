//! Writes `ir/src/onnx/proto.rs` from the vendored `ir/proto/onnx.proto`.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let proto_dir = root.join("ir/proto");
    let fds = protox::compile(["onnx.proto"], [&proto_dir]).expect("onnx.proto compiles");
    let out = tempdir();
    prost_build::Config::new()
        .out_dir(&out)
        .compile_fds(fds)
        .expect("prost-build writes the code");
    let dest = root.join("ir/src/onnx/proto.rs");
    std::fs::copy(out.join("onnx.rs"), &dest).expect("copy the generated code");
    println!("wrote {}", dest.display());
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("onnx-proto-gen-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temporary folder");
    d
}
