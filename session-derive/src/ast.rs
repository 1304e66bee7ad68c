//! The model of the input: the struct and its fields, borrowed from syn, with their parsed
//! `#[session(...)]` options. Item shapes the derive cannot handle are reported here.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::{Data, DeriveInput, Fields, GenericParam, Generics, Ident, Type, Visibility};

use crate::attr::{self, ContainerAttrs, FieldAttrs};
use crate::ctxt::Ctxt;

/// A struct with named fields that derives `Session`.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a Visibility,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: ContainerAttrs,
    /// The named fields; empty when the item has another shape (already reported).
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    /// The field name without `r#`.
    pub(crate) name: String,
    pub(crate) vis: &'a Visibility,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: FieldAttrs,
}

impl<'a> Input<'a> {
    /// Builds the model. Every problem goes into `cx`; what could not be parsed is left out, so
    /// the result is always usable for the error fallback.
    pub(crate) fn from_syn(cx: &Ctxt, node: &'a DeriveInput) -> Self {
        let attrs = attr::container(cx, &node.attrs);
        let fields = match &node.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => fields
                    .named
                    .iter()
                    .filter_map(|field| Field::from_syn(cx, field))
                    .collect(),
                Fields::Unnamed(fields) => {
                    cx.error(
                        fields.paren_token.span.join(),
                        "#[derive(Session)] requires named fields; tuple structs have no field names to use as session keys",
                    );
                    Vec::new()
                }
                Fields::Unit => {
                    cx.error(
                        node.ident.span(),
                        "#[derive(Session)] requires named fields; unit structs have no fields to keep in a session",
                    );
                    Vec::new()
                }
            },
            Data::Enum(data) => {
                cx.error(
                    data.enum_token.span,
                    "#[derive(Session)] is only supported on structs, not enums",
                );
                Vec::new()
            }
            Data::Union(data) => {
                cx.error(
                    data.union_token.span,
                    "#[derive(Session)] is only supported on structs, not unions",
                );
                Vec::new()
            }
        };
        for param in &node.generics.params {
            if let GenericParam::Lifetime(param) = param {
                cx.error_spanned_by(
                    &param.lifetime,
                    "#[derive(Session)] does not support lifetime parameters because sessions are `'static`; use owned field types, like `String` instead of `&'a str`",
                );
            }
        }
        Input {
            ident: &node.ident,
            vis: &node.vis,
            generics: &node.generics,
            attrs,
            fields,
        }
    }

    /// Returns the cookie name: `cookie_name = "..."`, else the struct name in snake case, with
    /// the span to report it on.
    pub(crate) fn cookie_name(&self) -> (String, Span) {
        match &self.attrs.cookie_name {
            Some(lit) => (lit.value(), lit.span()),
            None => (
                snake_case(&self.ident.unraw().to_string()),
                self.ident.span(),
            ),
        }
    }
}

impl<'a> Field<'a> {
    fn from_syn(cx: &Ctxt, node: &'a syn::Field) -> Option<Self> {
        let ident = node.ident.as_ref()?;
        Some(Field {
            ident,
            name: ident.unraw().to_string(),
            vis: &node.vis,
            ty: &node.ty,
            attrs: attr::field(cx, &node.attrs),
        })
    }

    /// Returns whether the field is kept in the session (not `skip`).
    pub(crate) fn is_stored(&self) -> bool {
        self.attrs.skip.is_none()
    }

    /// Returns the name the field is stored under, with the span to report it on.
    pub(crate) fn stored_name(&self) -> (String, Span) {
        match &self.attrs.rename {
            Some(lit) => (lit.value(), lit.span()),
            None => (self.name.clone(), self.ident.span()),
        }
    }

    /// Returns `K` when the field's type is written `Option<K>` (or `std::option::Option<K>`, or
    /// `core::option::Option<K>`), the shape `#[session(owner)]` needs.
    pub(crate) fn option_inner(&self) -> Option<&'a Type> {
        let Type::Path(path) = self.ty else {
            return None;
        };
        if path.qself.is_some() {
            return None;
        }
        let segment = path.path.segments.last()?;
        if segment.ident != "Option" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
            return None;
        };
        match args.args.iter().collect::<Vec<_>>()[..] {
            [syn::GenericArgument::Type(inner)] => Some(inner),
            _ => None,
        }
    }

    /// Returns the names of the three generated accessors: `f`, `f_mut` and `set_f`.
    pub(crate) fn accessor_names(&self) -> [String; 3] {
        [
            self.name.clone(),
            format!("{}_mut", self.name),
            format!("set_{}", self.name),
        ]
    }
}

/// Converts a Rust type name to snake case: `UserSession` → `user_session`,
/// `HTTPSession` → `http_session`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).and_then(|p| chars.get(p));
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(prev) if prev.is_lowercase() || prev.is_ascii_digit() => true,
                Some(prev) if prev.is_uppercase() => next.is_some_and(|next| next.is_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_of_type_names() {
        assert_eq!(snake_case("UserSession"), "user_session");
        assert_eq!(snake_case("Shop"), "shop");
        assert_eq!(snake_case("HTTPSession"), "http_session");
        assert_eq!(snake_case("Session2FA"), "session2_fa");
        assert_eq!(snake_case("My_Type"), "my_type");
        assert_eq!(snake_case("already_snake"), "already_snake");
    }
}
