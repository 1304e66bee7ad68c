use session_runtime::__private::{Fields, State};
use session_runtime::Session;

#[derive(Session)]
#[session(max_age = 0)]
pub struct Cart {
    items: Vec<u64>,
    #[session(skip)]
    scratch: u8,
    items_mut: u8,
}

fn main() {
    // Only the attribute and collision errors above: the stub keeps the accessors that could be
    // generated, so code calling them does not fail too.
    let mut fields = <Cart as Session>::Fields::from_state(State::new(Cart {
        items: Vec::new(),
        scratch: 0,
        items_mut: 0,
    }));
    fields.items_mut().push(1);
    fields.set_scratch(2);
    let _ = fields.items().len();
}
