//! Code generation from a validated [`Input`]. Nothing here can fail: every problem was reported
//! by `attr.rs`, `ast.rs` or `valid.rs`, and then `fallback.rs` runs instead.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::LitStr;
use syn::spanned::Spanned as _;

use crate::ast::Input;
use crate::companion::companion_items;
use crate::model::{Model, Paths};

/// Generates the `impl Session`, the companion type with its accessors, and the constants of
/// the field codecs for a validated input.
#[expect(
    clippy::too_many_lines,
    reason = "the impl reads best as one quote! next to the pieces it interpolates"
)]
pub(crate) fn impl_session(input: &Input<'_>) -> TokenStream {
    let model = Model::new(input);
    let Paths {
        krate,
        private,
        core,
    } = &model.paths;
    let Model {
        self_ty,
        companion,
        fields,
        ..
    } = &model;
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let codec = model.paths.codec(input);

    // Where-clauses: the struct's own, plus the supertraits of `Session` and bounds on the field
    // types that mention a parameter, for a generic struct.
    let static_bound = model
        .is_generic
        .then(|| quote!(#self_ty: #core::marker::Send + #core::marker::Sync + 'static));
    let mut field_bounds = Vec::new();
    for f in fields.iter().filter(|f| f.generic) {
        let ty = &f.ty;
        if f.index.is_some() {
            field_bounds.push(quote!(#ty: #private::SessionValue));
        }
        if f.field.attrs.default.is_none() {
            field_bounds.push(quote!(#ty: #private::SessionDefault));
        }
    }
    let session_where = model.where_clause(static_bound.clone().into_iter().chain(field_bounds));
    let companion_items = companion_items(input, &model, fields.iter(), static_bound);

    // A view (`view_of`) takes the cookie, codec and timeouts of the type it views, and checks
    // at compile time that its fields are that type's fields: the same Rust name, type and
    // stored name, each error spanned on the field. Its `Session` impl is otherwise a struct's.
    let view = input.attrs.view_of.as_ref().map(|root_ty| {
        let root = quote_spanned!(root_ty.span()=> <#root_ty as #krate::Session>);
        let root_fields = quote_spanned!(root_ty.span()=> <#root::Fields>);
        let field_checks = fields.iter().filter(|f| f.index.is_some()).map(|f| {
            let member = &f.member;
            let ty = &f.ty;
            let (stored, span) = f.field.stored_name();
            let stored = LitStr::new(&stored, span);
            let aliases = &f.field.attrs.aliases;
            let info = info_ident(f);
            // The field exists (the clearest error when it does not), has exactly this type (no
            // deref coercion), and is stored under this name with every alias the type reads.
            let check_member = quote_spanned! {f.field.ident.span()=>
                const _: fn(&#root_ty) = |root| {
                    let _ = &root.#member;
                };
            };
            // Every token of the path spanned on the field type, where a mismatch is reported.
            let root_info = respan(quote!(#root_fields::#info), f.field.ty.span());
            let check_ty = quote_spanned! {f.field.ty.span()=>
                const _: #private::FieldInfo<#ty> = #root_info;
            };
            let message = LitStr::new(
                &format!(
                    "field `{}` of this view must be stored as the type it views stores it: the same #[session(rename = \"...\")], and every #[session(alias = \"...\")] it has",
                    f.field.name
                ),
                span,
            );
            // `::core::assert!` written here, not through `#core`: the error of a failed
            // assertion points at the assertion's own tokens, which this spans on the field.
            let check_name = quote_spanned! {span=>
                const _: () = ::core::assert!(
                    #private::view_field_matches(&#root_fields::#info, #stored, &[#(#aliases),*]),
                    #message
                );
            };
            quote!(#check_member #check_ty #check_name)
        });
        let view_impl = quote! {
            #[automatically_derived]
            impl #krate::session::SessionView for #self_ty {
                type Root = #root_ty;
            }

            #[automatically_derived]
            impl #private::ViewSealed for #self_ty {}
        };
        let checks = quote_spanned! {root_ty.span()=>
            #view_impl
            const _: () = ::core::assert!(
                #root::OWNER_INDEX.is_none(),
                "a session type with an owner field cannot have views: its saves keep the owner's index; extract the type itself"
            );
            #(#field_checks)*
        };
        (root, checks)
    });

    // Constants.
    let (cookie_name, cookie_span) = input.cookie_name();
    let cookie_name = LitStr::new(&cookie_name, cookie_span);
    let seconds = |value: Option<&crate::attr::Seconds>| {
        value.map_or_else(
            || quote!(#core::option::Option::None),
            |seconds| {
                let mut lit = Literal::u64_unsuffixed(seconds.value);
                lit.set_span(seconds.lit.span());
                quote!(#core::option::Option::Some(#lit))
            },
        )
    };
    let mut max_age = seconds(input.attrs.max_age.as_ref());
    let mut absolute_max_age = seconds(input.attrs.absolute_max_age.as_ref());
    let mut cookie_name = quote!(#cookie_name);
    let mut codec = codec;
    let mut view_checks = TokenStream::new();
    if let Some((root, checks)) = view {
        cookie_name = quote!(#root::COOKIE_NAME);
        codec = quote!(#root::Codec);
        max_age = quote!(#root::MAX_AGE);
        absolute_max_age = quote!(#root::ABSOLUTE_MAX_AGE);
        view_checks = checks;
    }
    // Only `purge_undeclared` overrides the trait's default (keep). Spanned on the key, where
    // an error about the constant belongs.
    let keep_undeclared = input
        .attrs
        .purge_undeclared
        .map(|span| quote_spanned!(span=> const KEEP_UNDECLARED: #core::primitive::bool = false;));
    // The owner field (`#[session(owner)]`): its index, its key for the store's index, and
    // `OwnedSession`, whose `OwnerKey` bound on `K` is checked spanned on the field type.
    let owner = fields
        .iter()
        .find(|f| f.field.attrs.owner.is_some() && f.index.is_some());
    // `owner_key` goes through `OwnedSession`, so a key type that is not an `OwnerKey` is
    // reported once, at `type Owner`.
    let owner_items = owner.map(|f| {
        let index = Literal::usize_unsuffixed(f.index.unwrap_or_default());
        quote! {
            const OWNER_INDEX: #core::option::Option<#core::primitive::usize> =
                #core::option::Option::Some(#index);

            fn owner_key(&self) -> #core::option::Option<::std::string::String> {
                #private::owner_index_key::<Self>(self)
            }
        }
    });
    let owned_impl = owner.map(|f| {
        let member = &f.member;
        let ty = &f.ty;
        let owner_ty = quote_spanned!(f.field.ty.span()=> <#ty as #private::OptionOf>::Inner);
        quote! {
            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #impl_generics #krate::owner::OwnedSession for #self_ty #session_where {
                type Owner = #owner_ty;

                fn owner(&self) -> #core::option::Option<&Self::Owner> {
                    #private::OptionOf::get(&self.#member)
                }
            }
        }
    });
    let field_names: Vec<LitStr> = fields
        .iter()
        .filter(|f| f.index.is_some())
        .map(|f| {
            let (name, span) = f.field.stored_name();
            LitStr::new(&name, span)
        })
        .collect();
    // Aliases first, so that the current name, decoded last, wins when a record holds both.
    let load_names = fields
        .iter()
        .filter(|f| f.index.is_some())
        .flat_map(|f| &f.field.attrs.aliases)
        .chain(&field_names);

    // `new_default`: the `default` function or `Default`, whose bound is checked here, spanned
    // on the field type.
    let inits = fields.iter().map(|f| {
        let member = &f.member;
        let value = if let Some(default) = &f.field.attrs.default {
            let path = &default.path;
            quote_spanned!(default.lit.span()=> #path())
        } else {
            let ty = &f.ty;
            quote_spanned!(f.field.ty.span()=> #private::default_value::<#ty>())
        };
        quote!(#member: #value)
    });

    // `encode_field` and `decode_field`: one constant per stored field holds its encode and
    // decode functions, so the field type's bounds are checked once, there, spanned on the type.
    let turbofish = ty_generics.as_turbofish();
    let fns_name = |index: usize| format_ident!("__SESSION_FIELD_{}", index);
    let fns_consts = fields.iter().filter_map(|f| {
        let name = fns_name(f.index?);
        let ty = &f.ty;
        let value = quote_spanned!(f.field.ty.span()=> #private::field_fns::<#self_ty, #ty>());
        Some(quote!(const #name: #private::FieldFns<#ty> = #value;))
    });
    // How each stored field is stored, for the views of this type to check against.
    let info_consts = fields.iter().filter(|f| f.index.is_some()).map(|f| {
        let vis = f.field.vis;
        let ty = &f.ty;
        let info = info_ident(f);
        let (stored, span) = f.field.stored_name();
        let stored = LitStr::new(&stored, span);
        let aliases = &f.field.attrs.aliases;
        quote! {
            #[doc(hidden)]
            #[allow(non_upper_case_globals)]
            #vis const #info: #private::FieldInfo<#ty> =
                #private::FieldInfo::new(#stored, &[#(#aliases),*]);
        }
    });
    let encode_arms = fields.iter().filter_map(|f| {
        let index = f.index?;
        let name = fns_name(index);
        let index = Literal::usize_unsuffixed(index);
        let member = &f.member;
        Some(quote!(#index => (#companion #turbofish::#name.encode)(&self.#member),))
    });
    let decode_arms = fields.iter().filter_map(|f| {
        let name = fns_name(f.index?);
        let member = &f.member;
        let (stored, span) = f.field.stored_name();
        let stored = LitStr::new(&stored, span);
        let keys = std::iter::once(&stored).chain(&f.field.attrs.aliases);
        Some(quote! {
            #(#keys)|* => (#companion #turbofish::#name.decode)(&mut self.#member, __session_bytes),
        })
    });

    // `decode_loaded`: the same, by position in `LOAD_NAMES` (aliases first, then the current
    // names, as `load_names` lists them), so a record whose fields come in that order (a
    // store's `HMGET`, a record the runtime wrote) decodes without comparing names.
    let stored = || fields.iter().filter_map(|f| Some((f.index?, f)));
    let loaded_members = stored()
        .flat_map(|(index, f)| f.field.attrs.aliases.iter().map(move |_| (index, f)))
        .chain(stored());
    let loaded_arms = loaded_members.enumerate().map(|(position, (index, f))| {
        let name = fns_name(index);
        let member = &f.member;
        let position = Literal::usize_unsuffixed(position);
        quote! {
            #position => (#companion #turbofish::#name.decode)(&mut self.#member, __session_bytes),
        }
    });

    quote! {
        const _: () = {
            #companion_items

            #view_checks

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #impl_generics #krate::Session for #self_ty #session_where {
                type Fields = #companion #ty_generics;
                type Codec = #codec;
                const COOKIE_NAME: &'static #core::primitive::str = #cookie_name;
                const MAX_AGE: #core::option::Option<#core::primitive::u64> = #max_age;
                const ABSOLUTE_MAX_AGE: #core::option::Option<#core::primitive::u64> =
                    #absolute_max_age;
                const FIELD_NAMES: &'static [&'static #core::primitive::str] = &[#(#field_names),*];
                const LOAD_NAMES: &'static [&'static #core::primitive::str] = &[#(#load_names),*];
                #keep_undeclared
                #owner_items

                fn new_default() -> Self {
                    Self { #(#inits,)* }
                }

                fn encode_field(
                    &self,
                    __session_index: #core::primitive::usize,
                ) -> #core::result::Result<::std::vec::Vec<#core::primitive::u8>, #private::CodecError> {
                    match __session_index {
                        #(#encode_arms)*
                        _ => #core::result::Result::Err(
                            #private::CodecError::encode("no session field with this index"),
                        ),
                    }
                }

                fn decode_field(
                    &mut self,
                    __session_name: &#core::primitive::str,
                    __session_bytes: &[#core::primitive::u8],
                ) -> #private::FieldDecode {
                    match __session_name {
                        #(#decode_arms)*
                        _ => #private::FieldDecode::Unknown,
                    }
                }

                fn decode_loaded(
                    &mut self,
                    __session_position: #core::primitive::usize,
                    __session_bytes: &[#core::primitive::u8],
                ) -> #private::FieldDecode {
                    match __session_position {
                        #(#loaded_arms)*
                        _ => #private::FieldDecode::Unknown,
                    }
                }
            }

            #owned_impl

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #impl_generics #companion #ty_generics #session_where {
                #(#fns_consts)*
                #(#info_consts)*
            }
        };
    }
}

/// The name of the constant that says how field `f` is stored (see `FieldInfo`).
fn info_ident(f: &crate::model::FieldGen<'_, '_>) -> proc_macro2::Ident {
    format_ident!("__SESSION_VIEW_{}", f.field.name)
}

/// `tokens` with every token (inside groups too) spanned on `span`.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
