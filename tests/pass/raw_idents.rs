//! Raw identifiers: stored under their plain name, accessors keep `r#` only where needed.

use session_runtime::__private::{Fields as _, State};
use session_runtime::Session;

#[allow(non_camel_case_types)]
#[derive(Session)]
pub struct r#struct {
    r#type: String,
    r#match: u8,
    r#async: bool,
    #[session(rename = "loop")]
    r#for: u8,
    r#normal: u8,
}

fn main() {
    assert_eq!(r#struct::COOKIE_NAME, "struct");
    assert_eq!(
        r#struct::FIELD_NAMES,
        ["type", "match", "async", "loop", "normal"]
    );
    let mut fields = <r#struct as Session>::Fields::from_state(State::new(r#struct::new_default()));
    fields.set_type("admin".to_owned());
    fields.type_mut().push('!');
    assert_eq!(fields.r#type(), "admin!");
    *fields.match_mut() += 1;
    assert_eq!(*fields.r#match(), 1);
    fields.set_async(true);
    assert!(*fields.r#async());
    fields.set_for(2);
    assert_eq!(*fields.r#for(), 2);
    *fields.normal_mut() = 3;
    assert_eq!(*fields.normal(), 3);
}
