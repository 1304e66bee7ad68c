//! What the derive emits when the input has errors: the errors, plus a stub `impl Session` so
//! that code using the type as a `Session` elsewhere does not fail a second time (as thiserror
//! and clap do).

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Input;
use crate::companion::companion_items;
use crate::model::{Model, Paths};

/// Returns `compile_error!`s for `error` and a stub impl whose methods are never called.
///
/// The stub keeps the generated accessors when it can (a struct without lifetime parameters),
/// so that handlers calling `session.cart_mut()` do not fail too; accessors whose names collide
/// are left out. Otherwise its `Fields` is the runtime's accessor-less `Plain`.
pub(crate) fn expand(input: &Input<'_>, error: &syn::Error) -> TokenStream {
    let model = Model::new(input);
    let codec = model.paths.codec(input);
    let Paths {
        krate,
        private,
        core,
    } = &model.paths;
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let errors = error.to_compile_error();
    let self_ty = &model.self_ty;
    let companion_name = &model.companion;
    // A bound with a made-up lifetime is not checked where the impl is declared (trivial bounds
    // are unstable), so a struct that is not `Send` causes no extra error here.
    let static_bound = quote! {
        for<'__session_workaround> #self_ty: #core::marker::Send + #core::marker::Sync + 'static
    };
    let predicates = input
        .generics
        .where_clause
        .iter()
        .flat_map(|clause| clause.predicates.iter());

    let (companion, fields_type) = if input.generics.lifetimes().next().is_none() {
        let mut seen = BTreeSet::new();
        let fields = model.fields.iter().filter(|f| {
            let names = f.field.accessor_names();
            let unique = names.iter().all(|name| !seen.contains(name));
            if unique {
                seen.extend(names);
            }
            unique
        });
        (
            companion_items(input, &model, fields, Some(static_bound.clone())),
            quote!(#companion_name #ty_generics),
        )
    } else {
        (TokenStream::new(), quote!(#private::Plain<Self>))
    };

    quote! {
        #errors

        const _: () = {
            #companion

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #impl_generics #krate::Session for #self_ty
            where
                #(#predicates,)*
                #static_bound,
            {
                type Fields = #fields_type;
                type Codec = #codec;
                const COOKIE_NAME: &'static #core::primitive::str = "";
                const MAX_AGE: #core::option::Option<#core::primitive::u64> =
                    #core::option::Option::None;
                const ABSOLUTE_MAX_AGE: #core::option::Option<#core::primitive::u64> =
                    #core::option::Option::None;
                const FIELD_NAMES: &'static [&'static #core::primitive::str] = &[];

                fn new_default() -> Self {
                    #core::unreachable!()
                }

                fn encode_field(
                    &self,
                    _: #core::primitive::usize,
                ) -> #core::result::Result<::std::vec::Vec<#core::primitive::u8>, #private::CodecError> {
                    #core::unreachable!()
                }

                fn decode_field(
                    &mut self,
                    _: &#core::primitive::str,
                    _: &[#core::primitive::u8],
                ) -> #private::FieldDecode {
                    #core::unreachable!()
                }
            }
        };
    }
}
