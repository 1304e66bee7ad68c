//! Code generation from a validated [`Input`]. Nothing here can fail: every problem was reported
//! by `attr.rs`, `ast.rs` or `valid.rs`, and then `fallback.rs` runs instead.

use proc_macro2::{Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{DeriveInput, GenericParam, LitStr};

use crate::ast::{Field, Input};
use crate::attr::CodecAttr;
use crate::ctxt::Ctxt;
use crate::{fallback, valid};

/// Parses, validates and expands one `#[derive(Session)]`.
pub(crate) fn derive(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let input = Input::from_syn(&cx, node);
    valid::check(&cx, &input);
    let tokens = match cx.check() {
        Ok(()) => impl_session(&input),
        // Emit a stub impl as well, so that users see only the real errors and not a second one
        // wherever the type is used as a `Session` (thiserror's `fallback.rs`).
        Err(error) => fallback::expand(&input, &error),
    };
    debug_print(&tokens);
    tokens
}

/// Prints the expansion when `SESSION_DERIVE_DEBUG` is set (like axum-macros'
/// `AXUM_MACROS_DEBUG`).
#[expect(
    clippy::print_stderr,
    reason = "a debugging aid the user asks for with SESSION_DERIVE_DEBUG"
)]
fn debug_print(tokens: &TokenStream) {
    if std::env::var_os("SESSION_DERIVE_DEBUG").is_some() {
        eprintln!("{tokens}");
    }
}

/// The paths the generated code goes through.
pub(crate) struct Paths {
    /// `::session_runtime`, or the path given with `crate = "..."`.
    pub(crate) krate: TokenStream,
    /// `<krate>::__private`.
    pub(crate) private: TokenStream,
    /// `<krate>::__private::core`, which no user item can shadow.
    pub(crate) core: TokenStream,
}

impl Paths {
    pub(crate) fn new(input: &Input<'_>) -> Self {
        let krate = input
            .attrs
            .krate
            .as_ref()
            .map_or_else(|| quote!(::session_runtime), ToTokens::to_token_stream);
        let private = quote!(#krate::__private);
        let core = quote!(#private::core);
        Paths {
            krate,
            private,
            core,
        }
    }

    /// Returns the codec type: `codec = ...`, else JSON.
    pub(crate) fn codec(&self, input: &Input<'_>) -> TokenStream {
        let private = &self.private;
        match &input.attrs.codec {
            None => quote!(#private::JsonCodec),
            // Spanned on the string, so that a runtime built without the codec's feature reports
            // the missing type there.
            Some(CodecAttr::Json(lit)) => quote_spanned!(lit.span()=> #private::JsonCodec),
            Some(CodecAttr::Msgpack(lit)) => quote_spanned!(lit.span()=> #private::MsgpackCodec),
            Some(CodecAttr::Path(path)) => path.to_token_stream(),
        }
    }
}

/// Returns `ident` with the hygiene of the macro call site, keeping its location; lints then
/// treat the generated items as generated (thiserror's `call_site_ident`).
pub(crate) fn call_site(ident: &Ident) -> Ident {
    let mut ident = ident.clone();
    ident.set_span(ident.span().resolved_at(Span::call_site()));
    ident
}

/// What the generated code needs to know about one field.
pub(crate) struct FieldGen<'f, 'a> {
    pub(crate) field: &'f Field<'a>,
    /// The field name as a member (`user_id`, `r#type`).
    member: Ident,
    /// The field type, with `Self` replaced by the struct type.
    ty: TokenStream,
    /// Whether the type mentions a type or const parameter of the struct.
    generic: bool,
    /// The index in `FIELD_NAMES` and the dirty set; `None` for a `skip` field.
    index: Option<usize>,
}

/// What the generated items share.
pub(crate) struct Model<'f, 'a> {
    pub(crate) paths: Paths,
    /// The struct name, with call-site hygiene.
    ident: Ident,
    /// The struct type: `Shop` or `Shop<T>`.
    pub(crate) self_ty: TokenStream,
    /// The name of the companion type.
    pub(crate) companion: Ident,
    /// Whether the struct has type or const parameters.
    is_generic: bool,
    /// The predicates of the struct's own where-clause.
    user_predicates: Vec<TokenStream>,
    pub(crate) fields: Vec<FieldGen<'f, 'a>>,
}

impl<'f, 'a> Model<'f, 'a> {
    pub(crate) fn new(input: &'f Input<'a>) -> Self {
        let paths = Paths::new(input);
        let ident = call_site(input.ident);
        let (_, ty_generics, _) = input.generics.split_for_impl();
        let self_ty = quote!(#ident #ty_generics);
        let params: Vec<String> = input
            .generics
            .params
            .iter()
            .filter_map(|param| match param {
                GenericParam::Type(param) => Some(param.ident.to_string()),
                GenericParam::Const(param) => Some(param.ident.to_string()),
                GenericParam::Lifetime(_) => None,
            })
            .collect();
        let mut next_index = 0;
        let fields = input
            .fields
            .iter()
            .map(|field| {
                let ty = replace_self(field.ty.to_token_stream(), &self_ty);
                let index = field.is_stored().then(|| {
                    next_index += 1;
                    next_index - 1
                });
                FieldGen {
                    field,
                    member: call_site(field.ident),
                    generic: mentions(&ty, &params),
                    ty,
                    index,
                }
            })
            .collect();
        let user_predicates = input
            .generics
            .where_clause
            .iter()
            .flat_map(|clause| clause.predicates.iter())
            .map(ToTokens::to_token_stream)
            .collect();
        Model {
            paths,
            ident,
            self_ty,
            companion: Ident::new("__SessionFields", Span::call_site()),
            is_generic: !params.is_empty(),
            user_predicates,
            fields,
        }
    }

    /// Returns `where <the struct's predicates>, <extra>`.
    fn where_clause(&self, extra: impl IntoIterator<Item = TokenStream>) -> TokenStream {
        let predicates: Vec<TokenStream> =
            self.user_predicates.iter().cloned().chain(extra).collect();
        if predicates.is_empty() {
            TokenStream::new()
        } else {
            quote!(where #(#predicates),*)
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "the impl reads best as one quote! next to the pieces it interpolates"
)]
fn impl_session(input: &Input<'_>) -> TokenStream {
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
    let max_age = seconds(input.attrs.max_age.as_ref());
    let absolute_max_age = seconds(input.attrs.absolute_max_age.as_ref());
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

    quote! {
        const _: () = {
            #companion_items

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
            }

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #impl_generics #companion #ty_generics #session_where {
                #(#fns_consts)*
            }
        };
    }
}

/// Generates the companion type, its `Fields` and `Debug` impls, and the accessors of `fields`.
/// `static_bound` is the `Send + Sync + 'static` bound on the struct type that `Fields` needs,
/// if it has to be written out.
pub(crate) fn companion_items<'f, 'a: 'f>(
    input: &Input<'_>,
    model: &Model<'_, '_>,
    fields: impl Iterator<Item = &'f FieldGen<'f, 'a>>,
    static_bound: Option<TokenStream>,
) -> TokenStream {
    let Paths { private, core, .. } = &model.paths;
    let Model {
        ident,
        self_ty,
        companion,
        ..
    } = model;
    let vis = input.vis;
    let generics = input.generics;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let fields_where = model.where_clause(static_bound);
    let accessors = fields.map(|f| accessors(f, core));
    let doc = format!(
        "The fields of the session `{ident}` with typed accessors, generated by `#[derive(Session)]`; `TypedSession<{ident}>` dereferences to it."
    );

    quote! {
        #[doc = #doc]
        #vis struct #companion #generics #where_clause {
            __session_state: #private::State<#self_ty>,
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #impl_generics #private::Fields<#self_ty> for #companion #ty_generics #fields_where {
            #[inline]
            fn from_state(state: #private::State<#self_ty>) -> Self {
                Self { __session_state: state }
            }
            #[inline]
            fn state(&self) -> &#private::State<#self_ty> {
                &self.__session_state
            }
            #[inline]
            fn state_mut(&mut self) -> &mut #private::State<#self_ty> {
                &mut self.__session_state
            }
            #[inline]
            fn into_state(self) -> #private::State<#self_ty> {
                self.__session_state
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #impl_generics #core::fmt::Debug for #companion #ty_generics #where_clause {
            fn fmt(&self, __session_formatter: &mut #core::fmt::Formatter<'_>) -> #core::fmt::Result {
                #core::fmt::Debug::fmt(&self.__session_state, __session_formatter)
            }
        }

        #[automatically_derived]
        #[allow(dead_code, unused_qualifications)]
        impl #impl_generics #companion #ty_generics #where_clause {
            #(#accessors)*
        }
    }
}

/// Generates `f()`, `f_mut()` and `set_f()` for one field.
fn accessors(f: &FieldGen<'_, '_>, core: &TokenStream) -> TokenStream {
    let field = f.field;
    let name = &field.name;
    let member = &f.member;
    let vis = field.vis;
    let ty = &f.ty;
    let span = member.span();
    let getter = member;
    let getter_mut = format_ident!("{}_mut", name, span = span);
    let setter = format_ident!("set_{}", name, span = span);

    let getter_doc = format!("Returns `{name}`.");
    let (state_mut, mut_doc, set_doc) = match f.index {
        Some(index) => {
            let index = Literal::usize_unsuffixed(index);
            (
                quote!(field_mut(#index)),
                format!("Returns `{name}` for changing it in place, and marks it changed."),
                format!("Sets `{name}`, marks it changed and returns the old value."),
            )
        }
        None => (
            quote!(data_unmarked()),
            format!(
                "Returns `{name}` for changing it in place. `{name}` is not stored (`#[session(skip)]`), so nothing is marked changed."
            ),
            format!(
                "Sets `{name}` and returns the old value. `{name}` is not stored (`#[session(skip)]`), so nothing is marked changed."
            ),
        ),
    };

    quote! {
        #[doc = #getter_doc]
        #[inline]
        #[must_use]
        #vis fn #getter(&self) -> &#ty {
            &self.__session_state.data().#member
        }

        #[doc = #mut_doc]
        #[inline]
        #vis fn #getter_mut(&mut self) -> &mut #ty {
            &mut self.__session_state.#state_mut.#member
        }

        #[doc = #set_doc]
        #[inline]
        #vis fn #setter(&mut self, value: #ty) -> #ty {
            #core::mem::replace(&mut self.__session_state.#state_mut.#member, value)
        }
    }
}

/// Replaces every `Self` in a field type with the struct type; the generated items that repeat
/// the type are not inside the struct, where `Self` meant the struct.
fn replace_self(tokens: TokenStream, self_ty: &TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tree| match tree {
            TokenTree::Ident(ident) if ident == "Self" => self_ty.clone(),
            TokenTree::Group(group) => {
                let mut replaced =
                    Group::new(group.delimiter(), replace_self(group.stream(), self_ty));
                replaced.set_span(group.span());
                TokenTree::Group(replaced).into_token_stream()
            }
            other => other.into_token_stream(),
        })
        .collect()
}

/// Returns whether `tokens` mention one of `params` (conservatively: any identifier with that
/// name, as serde and thiserror do).
fn mentions(tokens: &TokenStream, params: &[String]) -> bool {
    !params.is_empty()
        && tokens.clone().into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => params.iter().any(|param| ident == param),
            TokenTree::Group(group) => mentions(&group.stream(), params),
            _ => false,
        })
}
