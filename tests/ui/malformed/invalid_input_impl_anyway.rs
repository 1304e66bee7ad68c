use session_runtime::Session;

#[derive(Session)]
#[session(codec = "yaml")]
pub struct Cart {
    items: Vec<u64>,
}

fn needs_session<T: Session>() -> &'static str {
    T::COOKIE_NAME
}

fn main() {
    // Only the attribute error above: the stub impl makes `Cart` a `Session` anyway.
    let _ = needs_session::<Cart>();
    let _ = <Cart as Session>::FIELD_NAMES;
}
