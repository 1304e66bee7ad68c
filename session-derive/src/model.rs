//! What the generated items share, derived from a validated or partial [`Input`]: the paths the
//! generated code goes through, the struct type, and one entry per field. Used by both `expand.rs`
//! and `fallback.rs`.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::GenericParam;

use crate::ast::{Field, Input};
use crate::attr::CodecAttr;

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
/// treat the generated items as generated (as thiserror does).
pub(crate) fn call_site(ident: &Ident) -> Ident {
    let mut ident = ident.clone();
    ident.set_span(ident.span().resolved_at(Span::call_site()));
    ident
}

/// What the generated code needs to know about one field.
pub(crate) struct FieldGen<'f, 'a> {
    pub(crate) field: &'f Field<'a>,
    /// The field name as a member (`user_id`, `r#type`).
    pub(crate) member: Ident,
    /// The field type, with `Self` replaced by the struct type.
    pub(crate) ty: TokenStream,
    /// Whether the type mentions a type or const parameter of the struct.
    pub(crate) generic: bool,
    /// The index in `FIELD_NAMES` and the dirty set; `None` for a `skip` field.
    pub(crate) index: Option<usize>,
}

/// What the generated items share.
pub(crate) struct Model<'f, 'a> {
    pub(crate) paths: Paths,
    /// The struct name, with call-site hygiene.
    pub(crate) ident: Ident,
    /// The struct type: `Shop` or `Shop<T>`.
    pub(crate) self_ty: TokenStream,
    /// The name of the companion type.
    pub(crate) companion: Ident,
    /// Whether the struct has type or const parameters.
    pub(crate) is_generic: bool,
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
    pub(crate) fn where_clause(&self, extra: impl IntoIterator<Item = TokenStream>) -> TokenStream {
        let predicates: Vec<TokenStream> =
            self.user_predicates.iter().cloned().chain(extra).collect();
        if predicates.is_empty() {
            TokenStream::new()
        } else {
            quote!(where #(#predicates),*)
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
