//! Type and const parameters, bounds, where-clauses and `Self` in field types.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use session_runtime::__private::{Fields as _, State};
use session_runtime::Session;

#[derive(Session)]
pub struct Wrapper<T> {
    value: T,
    items: Vec<T>,
    count: u32,
    #[session(skip)]
    marker: PhantomData<T>,
}

#[derive(Default)]
pub struct Const<const N: usize>;

fn three() -> [u8; 3] {
    [1, 2, 3]
}

#[derive(Session)]
#[session(codec = "msgpack")]
pub struct Bounded<T: Clone + Default, U = String, const N: usize = 4>
where
    U: Clone,
{
    first: T,
    second: Option<U>,
    #[session(default = "three")]
    fixed: [u8; 3],
    #[session(skip)]
    n: Const<N>,
}

#[derive(Session, Serialize, Deserialize, Default)]
pub struct Node {
    value: u32,
    children: Vec<Self>,
    #[session(skip)]
    parent: Option<Box<Self>>,
}

fn needs_session<T: Session>() -> &'static [&'static str] {
    T::FIELD_NAMES
}

fn main() {
    assert_eq!(
        needs_session::<Wrapper<String>>(),
        ["value", "items", "count"]
    );
    assert_eq!(needs_session::<Bounded<u8>>(), ["first", "second", "fixed"]);
    assert_eq!(needs_session::<Bounded<u8, u16, 7>>().len(), 3);
    assert_eq!(needs_session::<Node>(), ["value", "children"]);

    let mut fields =
        <Wrapper<String> as Session>::Fields::from_state(State::new(Wrapper::new_default()));
    fields.items_mut().push("a".to_owned());
    fields.set_value("b".to_owned());
    assert_eq!(fields.items().len(), 1);
    let _: &PhantomData<String> = fields.marker();

    let mut fields = <Node as Session>::Fields::from_state(State::new(Node::new_default()));
    fields.children_mut().push(Node::default());
    assert!(fields.parent().is_none());

    let bounded = Bounded::<u8>::new_default();
    assert_eq!(bounded.fixed, [1, 2, 3]);
}
