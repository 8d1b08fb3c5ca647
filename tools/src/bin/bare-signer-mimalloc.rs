//! The bare signer (`bare-signer.rs`, the same code) built with keymint's allocator: mimalloc from
//! the same workspace dependency entry, so the same features. It is not a bar's baseline: it is the
//! reference that separates the allocator from keymint's own work in the token endpoint's p99.
//! Under the benchmark's load the bare signer on glibc's malloc often settles into a tighter
//! latency tail (p99 about 2 × p50) than on mimalloc (about 3 ×), with the same handler and the
//! same throughput; `ALLOCATOR_REFERENCE=1 scripts/bench-issuer` runs this binary beside the
//! other two.
//!
//! `cargo run --release -p keymint-tools --bin bare-signer-mimalloc -- 127.0.0.1:18183`

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "bare-signer.rs"]
mod bare;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    bare::main()
}
