//! Guards against a silent skip: the tests that drive the `outbox-relay` binary are
//! built only with the `cli` feature (`required-features` in Cargo.toml). Without it
//! this test fails and says how to run them.

#[test]
fn the_binary_tests_are_built() {
    let built_with_cli = std::hint::black_box(cfg!(feature = "cli"));
    assert!(
        built_with_cli,
        "the tests that run outbox-relay are not built without the `cli` feature: run \
         `cargo test --workspace` (load-tests enables it) or `cargo test -p outbox-engine --features cli`"
    );
}
