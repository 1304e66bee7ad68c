use session_runtime::Session;

#[derive(Session)]
pub struct Shop {
    visits: u64,
}

#[derive(Session)]
#[session(view_of = Shop)]
pub struct ShopVisits<T> {
    visits: u64,
    #[session(skip)]
    marker: std::marker::PhantomData<T>,
}

fn main() {}
