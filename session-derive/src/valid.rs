//! Checks of relations between options and fields: duplicate stored keys, options that
//! contradict each other, and accessor names that collide with each other or with the methods of
//! `TypedSession`.

use std::collections::BTreeMap;

use syn::spanned::Spanned as _;

use crate::ast::{Field, Input};
use crate::attr::{CodecAttr, cookie_name_problem};
use crate::ctxt::Ctxt;

/// The methods of `TypedSession<T>`. `TypedSession<T>` dereferences to the generated companion
/// type, so an accessor with one of these names could never be called through it.
///
/// Keep this list equal to the inherent methods that take `self` in `impl TypedSession<T>` in
/// `session-runtime/src/extract.rs` (not the associated functions `from_parts` and `peek`):
/// a method added there without its name here lets a field generate an accessor that the method
/// hides. The list in the `# Reserved names` section of the docs in `lib.rs` follows it too.
pub(crate) const TYPED_SESSION_METHODS: &[&str] = &[
    "id",
    "is_new",
    "created",
    "max_age",
    "set_max_age",
    "regenerate",
    "invalidate",
    "data",
    "data_mut",
    "replace",
    "is_dirty",
    "save",
    "into_root",
    "user_sessions",
    "revoke_session",
    "revoke_all_sessions",
    "revoke_other_sessions",
];

/// Runs every check, field by field, so that errors come out in source order.
pub(crate) fn check(cx: &Ctxt, input: &Input<'_>) {
    if input.attrs.view_of.is_some() {
        check_view(cx, input);
    } else {
        check_default_cookie_name(cx, input);
    }
    let mut accessors = BTreeMap::new();
    let mut keys = BTreeMap::new();
    let mut owner = None;
    for field in &input.fields {
        check_field(cx, field);
        check_owner(cx, field, &mut owner);
        check_accessor_collisions(cx, field, &mut accessors);
        if field.is_stored() {
            check_duplicate_keys(cx, field, &mut keys);
        }
    }
}

/// A view (`view_of`) takes its cookie, codec and timeouts from the type it views, keeps the
/// fields it does not declare, has no owner field and no parameters.
fn check_view(cx: &Ctxt, input: &Input<'_>) {
    let attrs = &input.attrs;
    let shared = |key: &str| {
        format!(
            "a view shares `{key}` with the session type it views; remove it here (set it on that type)"
        )
    };
    if let Some(lit) = &attrs.cookie_name {
        cx.error(lit.span(), shared("cookie_name"));
    }
    match &attrs.codec {
        Some(CodecAttr::Json(lit) | CodecAttr::Msgpack(lit)) => {
            cx.error(lit.span(), shared("codec"));
        }
        Some(CodecAttr::Path(path)) => cx.error_spanned_by(path, shared("codec")),
        None => {}
    }
    if let Some(seconds) = &attrs.max_age {
        cx.error(seconds.lit.span(), shared("max_age"));
    }
    if let Some(seconds) = &attrs.absolute_max_age {
        cx.error(seconds.lit.span(), shared("absolute_max_age"));
    }
    if let Some(span) = attrs.purge_undeclared {
        cx.error(
            span,
            "a view keeps the fields it does not declare (they belong to the type it views); remove `purge_undeclared`",
        );
    }
    if let Some(param) = input.generics.params.first() {
        cx.error(
            param.span(),
            "a view cannot have generic parameters; declare it for one concrete session type",
        );
    }
    for field in &input.fields {
        if let Some(span) = field.attrs.owner {
            cx.error(
                span,
                "a view cannot hold the owner field: a session with an owner is saved through its own type, which keeps the owner's index; remove #[session(owner)] or the field",
            );
        }
    }
}

/// The struct name in snake case must be a valid cookie name when `cookie_name` is not set.
fn check_default_cookie_name(cx: &Ctxt, input: &Input<'_>) {
    if input.attrs.cookie_name.is_some() {
        return;
    }
    let (name, span) = input.cookie_name();
    if let Some(problem) = cookie_name_problem(&name) {
        cx.error(
            span,
            format!(
                "the default cookie name `{name}` is not a valid cookie name: it contains {problem}; set one with #[session(cookie_name = \"...\")]"
            ),
        );
    }
}

/// Checks one field on its own.
fn check_field(cx: &Ctxt, field: &Field<'_>) {
    if field.name.starts_with("__") {
        cx.error(
            field.ident.span(),
            format!(
                "field name `{}` starts with `__`, which is reserved for generated code; rename the field",
                field.name
            ),
        );
    }

    if field.attrs.skip.is_some() {
        if let Some(rename) = &field.attrs.rename {
            cx.error(
                rename.span(),
                "`rename` has no effect on a `skip` field; remove one of them",
            );
        }
        for alias in &field.attrs.aliases {
            cx.error(
                alias.span(),
                "`alias` has no effect on a `skip` field; remove one of them",
            );
        }
    }

    let collisions: Vec<String> = field
        .accessor_names()
        .into_iter()
        .filter(|name| TYPED_SESSION_METHODS.contains(&name.as_str()))
        .map(|name| format!("`{name}()`"))
        .collect();
    if !collisions.is_empty() {
        let methods = match collisions.as_slice() {
            [one] => format!("method {one}"),
            many => format!("methods {}", many.join(" and ")),
        };
        let message = if field.is_stored() {
            format!(
                "field `{}` collides with the `TypedSession` {methods}; rename the Rust field and keep the stored name with #[session(rename = \"{}\")]",
                field.name,
                field.stored_name().0
            )
        } else {
            format!(
                "field `{}` collides with the `TypedSession` {methods}; rename the field",
                field.name
            )
        };
        cx.error(field.ident.span(), message);
    }
}

/// `#[session(owner)]`: on one stored field, of type `Option<K>`. `first` is the owner field seen
/// so far.
fn check_owner<'f, 'a>(cx: &Ctxt, field: &'f Field<'a>, first: &mut Option<&'f Field<'a>>) {
    let Some(span) = field.attrs.owner else {
        return;
    };
    if let Some(first) = first {
        cx.error(
            span,
            format!(
                "only one field can be the session's owner, and field `{}` already is; remove #[session(owner)] from one of them",
                first.name
            ),
        );
        return;
    }
    *first = Some(field);
    if let Some(skip) = field.attrs.skip {
        cx.error(
            skip,
            "the owner field must be stored: `skip` and `owner` cannot go together; remove one of them",
        );
    } else if field.option_inner().is_none() {
        cx.error(
            field.ty.span(),
            format!(
                "the owner field `{}` must have type `Option<K>`, where `K` is the user's key (an integer or a `String`): `None` while nobody is logged in",
                field.name
            ),
        );
    }
}

/// Two fields must not generate accessors with the same name (field `x` and field `x_mut`).
/// `owners` maps each accessor name seen so far to its field.
fn check_accessor_collisions<'a>(
    cx: &Ctxt,
    field: &'a Field<'_>,
    owners: &mut BTreeMap<String, &'a str>,
) {
    let names = field.accessor_names();
    if let Some((name, first)) = names
        .iter()
        .find_map(|name| owners.get(name).map(|first| (name, *first)))
    {
        cx.error(
            field.ident.span(),
            format!(
                "accessor `{name}()` of field `{}` is also generated for field `{first}`; rename one of the fields",
                field.name
            ),
        );
    }
    for name in names {
        owners.entry(name).or_insert(&field.name);
    }
}

/// Stored names and aliases must be unique across the stored fields. `owners` maps each key
/// seen so far to its field.
fn check_duplicate_keys<'a>(
    cx: &Ctxt,
    field: &'a Field<'_>,
    owners: &mut BTreeMap<String, &'a str>,
) {
    let (stored, span) = field.stored_name();
    match owners.get(&stored) {
        Some(first) => cx.error(
            span,
            format!(
                "duplicate session key `{stored}`: field `{first}` already uses it; give one field a different #[session(rename = \"...\")]"
            ),
        ),
        None => {
            owners.insert(stored, &field.name);
        }
    }
    for alias in &field.attrs.aliases {
        let key = alias.value();
        match owners.get(&key) {
            Some(first) if *first == field.name => cx.error(
                alias.span(),
                format!(
                    "duplicate session key `{key}`: this field already uses it; remove the repeated alias"
                ),
            ),
            Some(first) => cx.error(
                alias.span(),
                format!(
                    "duplicate session key `{key}`: field `{first}` already uses it; remove this alias"
                ),
            ),
            None => {
                owners.insert(key, &field.name);
            }
        }
    }
}
