use session_runtime::Session;

#[derive(Session)]
pub enum NotAStruct {
    A,
}

fn needs_session<T: Session>() {}

fn main() {
    // The stub impl keeps this from failing too.
    needs_session::<NotAStruct>();
}
