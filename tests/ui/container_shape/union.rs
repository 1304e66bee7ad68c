use session_runtime::Session;

#[derive(Session)]
pub union NotAStruct {
    a: u32,
    b: f32,
}

fn main() {}
