//! Runtime behaviour of `#[derive(Session)]` types, without HTTP: the constants, new sessions,
//! the per-field codec round trip, aliases, and the dirty bits the generated accessors set.

use serde::{Deserialize, Serialize};
use session_runtime::__private::{Fields, State};
use session_runtime::Session;
use session_runtime::session::FieldDecode;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
}

#[derive(Session)]
#[session(cookie_name = "shop", codec = "msgpack", max_age = 3600)]
struct Shop {
    user_id: Option<u64>,
    cart: Vec<Item>,
    #[session(default = "default_theme", alias = "colour")]
    theme: String,
    #[session(skip)]
    scratch: u8,
}

fn default_theme() -> String {
    "light".to_owned()
}

fn default_scratch() -> u8 {
    7
}

#[derive(Session)]
#[session(absolute_max_age = 86400)]
struct UserSession {
    #[session(rename = "v", alias = "count", alias = "hits")]
    visits: u32,
    #[session(skip, default = "default_scratch")]
    scratch: u8,
    r#type: String,
}

#[derive(Session)]
struct HTTPState {
    flag: bool,
}

#[derive(Session)]
#[session(codec = "json")]
struct Empty {}

#[derive(Session)]
struct Wide {
    f0: u8,
    f1: u8,
    f2: u8,
    f3: u8,
    f4: u8,
    f5: u8,
    f6: u8,
    f7: u8,
    f8: u8,
    f9: u8,
    f10: u8,
    f11: u8,
    f12: u8,
    f13: u8,
    f14: u8,
    f15: u8,
    f16: u8,
    f17: u8,
    f18: u8,
    f19: u8,
    f20: u8,
    f21: u8,
    f22: u8,
    f23: u8,
    f24: u8,
    f25: u8,
    f26: u8,
    f27: u8,
    f28: u8,
    f29: u8,
    f30: u8,
    f31: u8,
    f32: u8,
    f33: u8,
    f34: u8,
    f35: u8,
    f36: u8,
    f37: u8,
    f38: u8,
    f39: u8,
    f40: u8,
    f41: u8,
    f42: u8,
    f43: u8,
    f44: u8,
    f45: u8,
    f46: u8,
    f47: u8,
    f48: u8,
    f49: u8,
    f50: u8,
    f51: u8,
    f52: u8,
    f53: u8,
    f54: u8,
    f55: u8,
    f56: u8,
    f57: u8,
    f58: u8,
    f59: u8,
    f60: u8,
    f61: u8,
    f62: u8,
    f63: u8,
    f64: u8,
    f65: u8,
    f66: u8,
    f67: u8,
    f68: u8,
    f69: u8,
}

/// Wraps a new session of `T` in its generated companion type.
fn fields<T: Session>() -> T::Fields {
    T::Fields::from_state(State::new(T::new_default()))
}

/// Returns the indexes of the dirty fields.
fn dirty<T: Session>(fields: &T::Fields) -> Vec<usize> {
    (0..T::FIELD_NAMES.len())
        .filter(|&index| fields.state().dirty().contains(index))
        .collect()
}

/// A view of `Shop`: the cart and the theme (with the alias the root reads), and a field of its
/// own that is not stored.
#[derive(Session)]
#[session(view_of = Shop)]
struct ShopCart {
    cart: Vec<Item>,
    #[session(default = "default_theme", alias = "colour")]
    theme: String,
    #[session(skip)]
    scratch: u8,
}

#[test]
fn a_view_takes_its_settings_from_the_type_it_views() {
    use session_runtime::session::SessionView;

    assert_eq!(ShopCart::COOKIE_NAME, "shop");
    assert_eq!(ShopCart::MAX_AGE, Some(3600));
    assert_eq!(ShopCart::ABSOLUTE_MAX_AGE, None);
    const { assert!(ShopCart::KEEP_UNDECLARED) };
    assert_eq!(ShopCart::FIELD_NAMES, ["cart", "theme"]);
    assert_eq!(
        ShopCart::LOAD_NAMES,
        ["colour", "cart", "theme"],
        "a view loads its own fields only"
    );
    assert_eq!(
        std::any::TypeId::of::<<ShopCart as Session>::Codec>(),
        std::any::TypeId::of::<<Shop as Session>::Codec>()
    );
    assert_eq!(
        std::any::TypeId::of::<<ShopCart as SessionView>::Root>(),
        std::any::TypeId::of::<Shop>()
    );
    // The view decodes what its type encodes.
    let mut shop = Shop::new_default();
    shop.cart.push(Item {
        sku: "a".to_owned(),
        qty: 2,
    });
    let mut cart = ShopCart::new_default();
    assert!(matches!(
        cart.decode_field("cart", &shop.encode_field(1).unwrap()),
        FieldDecode::Decoded
    ));
    assert_eq!(cart.cart, shop.cart);
    assert_eq!((cart.theme.as_str(), cart.scratch), ("light", 0));
}

#[test]
fn constants() {
    assert_eq!(Shop::COOKIE_NAME, "shop");
    assert_eq!(Shop::MAX_AGE, Some(3600));
    assert_eq!(Shop::ABSOLUTE_MAX_AGE, None);
    assert_eq!(Shop::FIELD_NAMES, ["user_id", "cart", "theme"]);

    assert_eq!(UserSession::MAX_AGE, None);
    assert_eq!(UserSession::ABSOLUTE_MAX_AGE, Some(86400));
    assert_eq!(UserSession::FIELD_NAMES, ["v", "type"]);
    assert_eq!(Shop::LOAD_NAMES, ["colour", "user_id", "cart", "theme"]);
    assert_eq!(UserSession::LOAD_NAMES, ["count", "hits", "v", "type"]);

    assert_eq!(Empty::FIELD_NAMES, [] as [&str; 0]);
    assert_eq!(Wide::FIELD_NAMES.len(), 70);
    assert_eq!(Wide::FIELD_NAMES[69], "f69");
}

#[test]
fn default_cookie_name_is_the_struct_name_in_snake_case() {
    assert_eq!(UserSession::COOKIE_NAME, "user_session");
    assert_eq!(HTTPState::COOKIE_NAME, "http_state");
    assert_eq!(Empty::COOKIE_NAME, "empty");
}

#[test]
fn new_default_uses_default_functions() {
    let shop = Shop::new_default();
    assert_eq!(shop.user_id, None);
    assert!(shop.cart.is_empty());
    assert_eq!(shop.theme, "light");
    assert_eq!(shop.scratch, 0);

    let user = UserSession::new_default();
    assert_eq!(user.visits, 0);
    assert_eq!(user.scratch, 7);
    assert_eq!(user.r#type, "");
}

#[test]
fn msgpack_round_trip() {
    let mut shop = Shop::new_default();
    shop.user_id = Some(42);
    shop.cart.push(Item {
        sku: "tea".to_owned(),
        qty: 2,
    });
    shop.theme = "dark".to_owned();
    shop.scratch = 9;

    let mut loaded = Shop::new_default();
    for (index, name) in Shop::FIELD_NAMES.iter().enumerate() {
        let bytes = shop.encode_field(index).unwrap();
        assert!(matches!(
            loaded.decode_field(name, &bytes),
            FieldDecode::Decoded
        ));
    }
    assert_eq!(loaded.user_id, Some(42));
    assert_eq!(loaded.cart, shop.cart);
    assert_eq!(loaded.theme, "dark");
    // Not stored: keeps its default.
    assert_eq!(loaded.scratch, 0);

    // Maps with field names, never positional arrays: the cart is a fixarray of one item
    // (0x91) whose item is a fixmap (0x80..=0x8f).
    let cart = shop.encode_field(1).unwrap();
    assert_eq!(cart[0], 0x91);
    assert!((0x80..=0x8f).contains(&cart[1]), "{cart:x?}");
}

#[test]
fn json_round_trip() {
    let mut user = UserSession::new_default();
    user.visits = 3;
    user.r#type = "admin".to_owned();
    assert_eq!(user.encode_field(0).unwrap(), b"3");
    assert_eq!(user.encode_field(1).unwrap(), br#""admin""#);

    let mut loaded = UserSession::new_default();
    assert!(matches!(
        loaded.decode_field("v", b"3"),
        FieldDecode::Decoded
    ));
    assert!(matches!(
        loaded.decode_field("type", br#""admin""#),
        FieldDecode::Decoded
    ));
    assert_eq!(loaded.visits, 3);
    assert_eq!(loaded.r#type, "admin");
}

#[test]
fn encode_field_out_of_range_is_an_error() {
    assert!(Shop::new_default().encode_field(3).is_err());
    assert!(Empty::new_default().encode_field(0).is_err());
}

#[test]
fn aliases_decode() {
    let mut shop = Shop::new_default();
    let bytes = Shop {
        theme: "blue".to_owned(),
        ..Shop::new_default()
    }
    .encode_field(2)
    .unwrap();
    assert!(matches!(
        shop.decode_field("colour", &bytes),
        FieldDecode::Decoded
    ));
    assert_eq!(shop.theme, "blue");

    let mut user = UserSession::new_default();
    assert!(matches!(
        user.decode_field("count", b"5"),
        FieldDecode::Decoded
    ));
    assert_eq!(user.visits, 5);
    assert!(matches!(
        user.decode_field("hits", b"6"),
        FieldDecode::Decoded
    ));
    assert_eq!(user.visits, 6);
}

/// `decode_loaded(position)` does what `decode_field(LOAD_NAMES[position])` does, aliases
/// included, and a position past the names is unknown.
#[test]
fn decoding_by_position_matches_decoding_by_name() {
    let shop_values: [&[u8]; 4] = [
        &Shop {
            theme: "blue".to_owned(),
            ..Shop::new_default()
        }
        .encode_field(2)
        .unwrap(),
        &Shop {
            user_id: Some(9),
            ..Shop::new_default()
        }
        .encode_field(0)
        .unwrap(),
        &Shop {
            cart: vec![Item {
                sku: "a".to_owned(),
                qty: 2,
            }],
            ..Shop::new_default()
        }
        .encode_field(1)
        .unwrap(),
        &Shop {
            theme: "red".to_owned(),
            ..Shop::new_default()
        }
        .encode_field(2)
        .unwrap(),
    ];
    for (position, (name, bytes)) in Shop::LOAD_NAMES.iter().zip(shop_values).enumerate() {
        let (mut by_name, mut by_position) = (Shop::new_default(), Shop::new_default());
        assert!(matches!(
            by_name.decode_field(name, bytes),
            FieldDecode::Decoded
        ));
        assert!(matches!(
            by_position.decode_loaded(position, bytes),
            FieldDecode::Decoded
        ));
        assert_eq!(
            (by_name.user_id, &by_name.cart, &by_name.theme),
            (by_position.user_id, &by_position.cart, &by_position.theme),
            "{name}"
        );
    }
    for (position, value) in [b"5", b"6", b"7"].into_iter().enumerate() {
        let mut user = UserSession::new_default();
        assert!(matches!(
            user.decode_loaded(position, value),
            FieldDecode::Decoded
        ));
        assert_eq!(user.visits, u32::from(value[0] - b'0'));
    }
    let mut user = UserSession::new_default();
    assert!(matches!(
        user.decode_loaded(3, br#""admin""#),
        FieldDecode::Decoded
    ));
    assert_eq!(user.r#type, "admin");
    assert!(matches!(user.decode_loaded(4, b"1"), FieldDecode::Unknown));
    assert!(matches!(
        Empty::new_default().decode_loaded(0, b"1"),
        FieldDecode::Unknown
    ));
    // Undecodable: the field keeps its value, as by name.
    assert!(matches!(
        user.decode_loaded(2, b"\"x\""),
        FieldDecode::Failed(_)
    ));
    assert_eq!(user.visits, 0);
}

#[test]
fn unknown_names_are_ignored() {
    let mut user = UserSession::new_default();
    // The Rust name of a renamed field is not a stored name.
    assert!(matches!(
        user.decode_field("visits", b"5"),
        FieldDecode::Unknown
    ));
    // Skip fields are never stored.
    assert!(matches!(
        user.decode_field("scratch", b"5"),
        FieldDecode::Unknown
    ));
    assert!(matches!(
        user.decode_field("removed", b"5"),
        FieldDecode::Unknown
    ));
    assert!(matches!(
        Empty::new_default().decode_field("x", b"1"),
        FieldDecode::Unknown
    ));
    assert_eq!(user.visits, 0);
    assert_eq!(user.scratch, 7);
}

#[test]
fn undecodable_values_fail_and_keep_the_old_value() {
    let mut user = UserSession::new_default();
    user.visits = 4;
    assert!(matches!(
        user.decode_field("v", br#""not a number""#),
        FieldDecode::Failed(_)
    ));
    assert_eq!(user.visits, 4);

    let mut shop = Shop::new_default();
    assert!(matches!(
        shop.decode_field("theme", &[0xc1]),
        FieldDecode::Failed(_)
    ));
    assert_eq!(shop.theme, "light");
}

#[test]
fn getters_do_not_mark() {
    let fields = fields::<Shop>();
    assert_eq!(*fields.user_id(), None);
    assert!(fields.cart().is_empty());
    assert_eq!(fields.theme(), "light");
    assert_eq!(*fields.scratch(), 0);
    assert!(fields.state().dirty().is_empty());
}

#[test]
fn mut_accessors_mark_their_field() {
    let mut fields = fields::<Shop>();
    fields.cart_mut().push(Item {
        sku: "tea".to_owned(),
        qty: 1,
    });
    assert_eq!(dirty::<Shop>(&fields), [1]);
    assert_eq!(fields.cart().len(), 1);

    let mut fields = self::fields::<Shop>();
    *fields.theme_mut() = "dark".to_owned();
    assert_eq!(dirty::<Shop>(&fields), [2]);
}

#[test]
fn setters_mark_their_field_and_return_the_old_value() {
    let mut fields = fields::<Shop>();
    assert_eq!(fields.set_user_id(Some(42)), None);
    assert_eq!(fields.set_user_id(Some(43)), Some(42));
    assert_eq!(dirty::<Shop>(&fields), [0]);
    assert_eq!(fields.state().data().user_id, Some(43));

    let mut fields = self::fields::<UserSession>();
    assert_eq!(fields.set_type("admin".to_owned()), "");
    assert_eq!(fields.r#type(), "admin");
    assert_eq!(dirty::<UserSession>(&fields), [1]);
    fields.type_mut().push('!');
    *fields.visits_mut() += 1;
    assert_eq!(dirty::<UserSession>(&fields), [0, 1]);
    assert_eq!(fields.into_state().into_parts().0.r#type, "admin!");
}

#[test]
fn skip_fields_never_mark() {
    let mut fields = fields::<Shop>();
    *fields.scratch_mut() = 5;
    assert_eq!(fields.set_scratch(6), 5);
    assert_eq!(*fields.scratch(), 6);
    assert!(fields.state().dirty().is_empty());

    let mut fields = self::fields::<UserSession>();
    assert_eq!(fields.set_scratch(1), 7);
    assert!(fields.state().dirty().is_empty());
}

#[test]
fn field_past_64_marks_its_bit() {
    let mut fields = fields::<Wide>();
    *fields.f69_mut() = 1;
    assert_eq!(dirty::<Wide>(&fields), [69]);
    fields.set_f0(2);
    fields.set_f64(3);
    assert_eq!(dirty::<Wide>(&fields), [0, 64, 69]);
    assert_eq!(*fields.f69(), 1);

    let mut wide = Wide::new_default();
    assert!(matches!(
        wide.decode_field("f69", b"9"),
        FieldDecode::Decoded
    ));
    assert_eq!(wide.f69, 9);
    assert_eq!(wide.encode_field(69).unwrap(), b"9");
}

#[test]
fn debug_shows_only_dirty_fields() {
    let mut fields = fields::<Shop>();
    fields.set_user_id(Some(42));
    let debug = format!("{fields:?}");
    assert!(debug.contains("dirty"), "{debug}");
    assert!(!debug.contains("42"), "{debug}");
}
