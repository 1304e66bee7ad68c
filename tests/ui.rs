//! trybuild UI tests: every error `#[derive(Session)]` can produce (`ui/<category>/*.rs`, each
//! with a reviewed `.stderr`), and unusual inputs that must compile (`pass/*.rs`).
//!
//! Refresh the `.stderr` files with `TRYBUILD=overwrite cargo test -p session-tests --test ui`
//! and read the diff: it is a change to what users see.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/**/*.rs");
    t.pass("pass/*.rs");
}
