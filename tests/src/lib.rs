//! Tests live in `tests/*.rs`. This library only compiles the README's Rust blocks as doctests,
//! so the quick start cannot drift from the API.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
