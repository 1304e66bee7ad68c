//! The error accumulator: parsing and validation record every problem here, so the user sees all
//! of them after one build (the shape of serde's `Ctxt`).

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// Collects the errors of one derive invocation.
///
/// Unlike serde's `Ctxt` there is no `Drop` check that panics when [`Ctxt::check`] was never
/// called: the macro must never panic. [`Ctxt::check`] takes `self`, and `derive_session` in
/// `lib.rs` is the only place that creates a `Ctxt`.
pub(crate) struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    /// Creates an empty accumulator.
    pub(crate) fn new() -> Self {
        Self {
            errors: RefCell::new(Vec::new()),
        }
    }

    /// Records an error spanned on `span`.
    pub(crate) fn error(&self, span: Span, message: impl Display) {
        self.syn_error(syn::Error::new(span, message));
    }

    /// Records an error spanned on every token of `tokens`.
    pub(crate) fn error_spanned_by(&self, tokens: impl ToTokens, message: impl Display) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an error produced by syn.
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// Returns every recorded error combined into one, or `Ok` if there was none.
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.into_inner().into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}
