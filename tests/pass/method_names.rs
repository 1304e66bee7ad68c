//! Field names that match the methods of the companion's traits (`Fields`, `Debug`) or the
//! generated parameter names are fine; the trait methods stay reachable through the trait
//! (which is how the runtime calls them, on a generic `T::Fields`).

use session_runtime::__private::{Fields, State};
use session_runtime::Session;

#[derive(Session)]
pub struct Names {
    state: u8,
    state_ref: String,
    from_state: u8,
    into_state: u8,
    fmt: u8,
    value: u8,
    index: u8,
    name: u8,
    bytes: u8,
    created_at: u8,
    session: u8,
}

type NamesFields = <Names as Session>::Fields;

fn main() {
    let mut fields = <NamesFields as Fields<Names>>::from_state(State::new(Names::new_default()));
    fields.set_state(1);
    fields.set_value(2);
    fields.set_fmt(3);
    assert_eq!(*fields.state(), 1);
    assert_eq!(*fields.value(), 2);
    assert_eq!(*fields.from_state(), 0);
    assert!(format!("{fields:?}").contains("dirty"));
    assert!(Fields::state(&fields).dirty().contains(0));
    let state = Fields::into_state(fields);
    assert_eq!(state.data().fmt, 3);
}
