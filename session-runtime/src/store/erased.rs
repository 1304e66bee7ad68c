//! The object-safe face of a [`SessionStore`] that the layer keeps: one boxed future per
//! operation for stores that wait, none for the stores of this crate that never do.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{
    Delete, Immediate, ListOwned, Load, OwnedRecords, Revoke, Save, SaveOutcome, SessionStore,
    StoreError, StoreFormat, StoreKind,
};
use crate::record::Record;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The future of a [`DynStore`] operation: already finished for the stores of this crate that
/// never wait (memory and cookie stores; see [`Immediate`]), boxed for any other store.
pub(crate) enum StoreFuture<'a, T> {
    Ready(Option<T>),
    Boxed(BoxFuture<'a, T>),
}

// `Ready`'s value is only ever moved out, never pinned.
impl<T> Unpin for StoreFuture<'_, T> {}

impl<T> Future for StoreFuture<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            Self::Ready(value) => {
                Poll::Ready(value.take().expect("store future polled after it finished"))
            }
            Self::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

/// The object-safe face of [`SessionStore`] that the layer keeps.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn kind(&self) -> StoreKind;
    fn format(&self, cookie_name: &str) -> StoreFormat;
    /// The store's operations as plain functions, for a store of this crate that never waits:
    /// every operation's future is then finished when returned (see [`Immediate`]).
    fn immediate(&self) -> Option<&dyn Immediate>;
    fn load<'a>(&'a self, load: Load<'a>) -> StoreFuture<'a, Result<Option<Record>, StoreError>>;
    fn save<'a>(&'a self, save: Save<'a>) -> StoreFuture<'a, Result<SaveOutcome, StoreError>>;
    fn delete<'a>(&'a self, delete: Delete<'a>) -> StoreFuture<'a, Result<(), StoreError>>;
    /// Off the request path (the per-user API): always boxed.
    fn list_owned<'a>(
        &'a self,
        list: ListOwned<'a>,
    ) -> BoxFuture<'a, Result<OwnedRecords, StoreError>>;
    fn revoke<'a>(&'a self, revoke: Revoke<'a>) -> BoxFuture<'a, Result<usize, StoreError>>;
}

impl<S: SessionStore> DynStore for S {
    fn kind(&self) -> StoreKind {
        SessionStore::kind(self)
    }
    fn format(&self, cookie_name: &str) -> StoreFormat {
        SessionStore::format(self, cookie_name)
    }
    fn immediate(&self) -> Option<&dyn Immediate> {
        self.__immediate()
    }
    fn load<'a>(&'a self, load: Load<'a>) -> StoreFuture<'a, Result<Option<Record>, StoreError>> {
        match self.__immediate() {
            Some(store) => StoreFuture::Ready(Some(store.load_now(load))),
            None => StoreFuture::Boxed(Box::pin(SessionStore::load(self, load))),
        }
    }
    fn save<'a>(&'a self, save: Save<'a>) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        match self.__immediate() {
            Some(store) => StoreFuture::Ready(Some(store.save_now(save))),
            None => StoreFuture::Boxed(Box::pin(SessionStore::save(self, save))),
        }
    }
    fn delete<'a>(&'a self, delete: Delete<'a>) -> StoreFuture<'a, Result<(), StoreError>> {
        match self.__immediate() {
            Some(store) => StoreFuture::Ready(Some(store.delete_now(delete))),
            None => StoreFuture::Boxed(Box::pin(SessionStore::delete(self, delete))),
        }
    }
    fn list_owned<'a>(
        &'a self,
        list: ListOwned<'a>,
    ) -> BoxFuture<'a, Result<OwnedRecords, StoreError>> {
        Box::pin(SessionStore::list_owned(self, list))
    }
    fn revoke<'a>(&'a self, revoke: Revoke<'a>) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(SessionStore::revoke(self, revoke))
    }
}
