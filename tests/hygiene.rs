//! The generated code uses absolute paths only: it compiles in a module that shadows the
//! prelude and common crate names (serde's `test_gen.rs`).

#![allow(
    dead_code,
    non_camel_case_types,
    unused_macros,
    clippy::disallowed_names,
    reason = "the shadowing items exist only to be in the way"
)]

mod shadowed {
    use ::session_runtime::Session;

    struct Result;
    struct Ok;
    struct Err;
    struct Some;
    struct None;
    struct Option;
    struct String;
    struct Box;
    struct Vec;
    struct Default;
    struct Send;
    struct Sync;
    struct Debug;
    struct Formatter;
    struct usize;
    struct u64;
    struct u8;
    struct str;
    struct State;
    struct Fields;
    struct Codec;
    struct JsonCodec;
    mod core {}
    mod std {}
    mod serde {}
    mod session_runtime {}
    macro_rules! unreachable {
        () => {
            compile_error!("the generated code must not use the caller's `unreachable!`")
        };
    }

    fn default_theme() -> ::std::string::String {
        "light".into()
    }

    #[derive(Session)]
    #[session(codec = "msgpack", max_age = 60)]
    struct Shop {
        user_id: ::std::option::Option<::core::primitive::u64>,
        cart: ::std::vec::Vec<::std::string::String>,
        #[session(default = "default_theme", alias = "colour")]
        theme: ::std::string::String,
        #[session(skip)]
        scratch: ::core::primitive::u8,
    }

    #[derive(Session)]
    #[session(crate = "::session_runtime")]
    struct Generic<T> {
        value: T,
        values: ::std::vec::Vec<T>,
    }

    #[derive(Session)]
    struct Empty {}

    pub(super) fn names() -> [&'static [&'static ::core::primitive::str]; 3] {
        [
            Shop::FIELD_NAMES,
            <Generic<::core::primitive::u8> as Session>::FIELD_NAMES,
            Empty::FIELD_NAMES,
        ]
    }
}

#[test]
fn derives_in_a_shadowed_module() {
    assert_eq!(
        shadowed::names(),
        [&["user_id", "cart", "theme"][..], &["value", "values"], &[]]
    );
}
