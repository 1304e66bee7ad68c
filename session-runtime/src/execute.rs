//! Executing a [`Plan`] against the store, with the follow-ups of periodic id renewal.

use std::borrow::Cow;

use crate::codec::RecordCodec;
use crate::cookie_header::CookieAction;
use crate::error::Error;
use crate::plan::{Executed, Plan, Saved, Write, WriteOp};
use crate::record::{RENEWED_FIELD, RecordRef, SessionId};
use crate::renewal::{self, MAX_FORWARDS};
use crate::shared::Shared;
use crate::store::{Delete, Immediate, Load, Save, SaveOp, SaveOutcome, StoreFormat};

/// How many fresh ids a create tries before giving up (a collision of 256-bit ids means a broken
/// random source or a broken store, not bad luck).
const CREATE_ATTEMPTS: usize = 3;

/// Runs a plan against the store.
pub(crate) async fn execute(plan: Plan, shared: &Shared) -> Result<Executed, Error> {
    let store = &*shared.store;
    let name = plan.cookie_name;
    let format = store.format(name);
    // Stores that write single fields can hold renewal forwards (see `SessionConfig::with_renewal`).
    let forwards = shared.config.renewal.is_some() && !format.writes_whole_records();
    if let Some(id) = &plan.delete {
        // Boxed, as the renewal's follow-up below: an ended or regenerated session's path, and
        // the future of every write would otherwise carry room for it.
        Box::pin(delete(id, name, plan.codec, forwards, shared, plan.now)).await?;
    }
    let Some(write) = plan.write else {
        return Ok(unwritten(plan.remove_cookie, plan.previous));
    };
    let (outcome, id) = match &write.op {
        WriteOp::Create | WriteOp::Regenerate(_) | WriteOp::Renew(_) => {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let new = format.ids().generate().map_err(Error::Random)?;
                let op = match &write.op {
                    WriteOp::Regenerate(old) => SaveOp::Regenerate { old, new: &new },
                    WriteOp::Renew(old) => SaveOp::Renew { old, new: &new },
                    _ => SaveOp::Create { id: &new },
                };
                match store.save(write.save(name, op, plan.now)).await? {
                    SaveOutcome::IdTaken if attempt < CREATE_ATTEMPTS => {}
                    SaveOutcome::IdTaken => return Err(Error::IdCollision),
                    outcome => break (outcome, Some(new)),
                }
            }
        }
        WriteOp::Update(id) => (
            store
                .save(write.save(name, SaveOp::Update { id }, plan.now))
                .await?,
            Some(id.clone()),
        ),
        WriteOp::Touch(id) => (
            store
                .save(write.save(name, SaveOp::Touch { id }, plan.now))
                .await?,
            Some(id.clone()),
        ),
        WriteOp::Seal => (
            store.save(write.save(name, SaveOp::Seal, plan.now)).await?,
            None,
        ),
    };
    let (outcome, id) = if forwards && needs_follow_up(&write.op, &outcome) {
        Box::pin(follow_renewal(&write, name, outcome, id, plan.now, shared)).await?
    } else {
        (outcome, id)
    };
    finish(name, format, write, outcome, id, plan.now, shared)
}

/// Runs a plan whose one store call, if any, seals the record into the cookie (see
/// [`Plan::seals_only`]: a cookie store's plans) on a store that never waits: one call of the
/// store's function, no future.
pub(crate) fn execute_sealed(
    plan: Plan,
    store: &dyn Immediate,
    shared: &Shared,
) -> Result<Executed, Error> {
    debug_assert!(plan.seals_only(), "execute_sealed on a plan that does more");
    let Some(write) = plan.write else {
        return Ok(unwritten(plan.remove_cookie, plan.previous));
    };
    let name = plan.cookie_name;
    let outcome = store.save_now(write.save(name, SaveOp::Seal, plan.now))?;
    let format = shared.store.format(name);
    finish(name, format, write, outcome, None, plan.now, shared)
}

/// What a plan without a write did: the cookie removed, or the one an earlier save gave.
fn unwritten(remove_cookie: bool, previous: Option<CookieAction>) -> Executed {
    Executed {
        cookie: if remove_cookie {
            Some(CookieAction::Remove)
        } else {
            previous
        },
        saved: Saved::Nothing,
        metadata: None,
        written: Vec::new(),
        purged: false,
    }
}

/// What a plan's write did, from the store's outcome: the cookie to send, and what the session
/// records of it.
fn finish(
    name: &'static str,
    format: StoreFormat,
    write: Box<Write>,
    outcome: SaveOutcome,
    id: Option<SessionId>,
    now: u64,
    shared: &Shared,
) -> Result<Executed, Error> {
    match outcome {
        SaveOutcome::Saved(value) => {
            // Quoted as the store's cookies are (Python's `http.cookies` for aiohttp ones).
            let value = match format.quoting().quote(&value) {
                Cow::Borrowed(_) => value,
                Cow::Owned(quoted) => quoted,
            };
            let size = name.len() + value.len();
            if size > shared.config.max_cookie_size {
                return Err(Error::CookieTooLarge {
                    size,
                    limit: shared.config.max_cookie_size,
                });
            }
            let max_age = write.expires_at.saturating_sub(now).div_ceil(1000);
            Ok(Executed {
                cookie: Some(CookieAction::Set { value, max_age }),
                saved: Saved::Stored(id),
                metadata: Some(write.metadata),
                written: write.fields,
                purged: write.purge.is_some(),
            })
        }
        SaveOutcome::Missing => {
            tracing::warn!(
                cookie = name,
                "session record expired or was deleted during the request; not recreating it"
            );
            Ok(Executed {
                cookie: None,
                saved: Saved::Missing,
                metadata: None,
                written: Vec::new(),
                purged: false,
            })
        }
        SaveOutcome::IdTaken => Err(Error::IdCollision),
    }
}

/// The second half of a renewal, once the record is stored under `new`: turns the record under
/// `old` into a forward to `new` that lasts the grace period. Returns `false` when the old record
/// is gone (a logout elsewhere during this request) or already forwards (another request renewed
/// it first; stores refuse to update a forward): the new record is then deleted again, so a
/// renewal never resurrects a session nor splits it in two.
async fn leave_forward(
    write: &Write,
    cookie_name: &str,
    old: &SessionId,
    new: &SessionId,
    now: u64,
    shared: &Shared,
) -> Result<bool, Error> {
    let store = &*shared.store;
    let whole = store.format(cookie_name).writes_whole_records();
    let grace = shared.config.renewal.map_or(0, |renewal| renewal.grace);
    let until = now.saturating_add(grace).min(write.expires_at);
    let forward = renewal::encode(write.codec, old, new, until)?;
    // A store that keeps whole records gets them whole; the forward field makes loads ignore the
    // data, which stays only until the old record expires.
    let mut fields = if whole {
        write.fields.clone()
    } else {
        Vec::new()
    };
    fields.push((RENEWED_FIELD, forward));
    let save = Save {
        cookie_name,
        op: SaveOp::Update { id: old },
        record: RecordRef {
            metadata: &write.metadata,
            encoded: &fields,
            kept: if whole { &write.kept } else { &[] },
        },
        expires_at: until,
        purge: None,
        now,
        codec: write.codec,
        // The forward is no session of anyone's: the new id holds the index entry.
        owner: None,
    };
    if let SaveOutcome::Saved(_) = store.save(save).await? {
        return Ok(true);
    }
    tracing::debug!(
        cookie = cookie_name,
        "session renewed or deleted by another request during this renewal"
    );
    store
        .delete(Delete {
            cookie_name,
            id: new,
        })
        .await?;
    Ok(false)
}

/// Deletes the record `id`; with `forwards`, first the records it forwards to, so a logout that
/// loaded the session just before another request renewed its id also ends the renewed session.
async fn delete(
    id: &SessionId,
    cookie_name: &str,
    codec: RecordCodec,
    forwards: bool,
    shared: &Shared,
    now: u64,
) -> Result<(), Error> {
    let store = &*shared.store;
    if forwards {
        let mut next = follow(id, cookie_name, codec, shared, now).await?;
        for _ in 0..MAX_FORWARDS {
            let Some(renewed) = next.take() else { break };
            store
                .delete(Delete {
                    cookie_name,
                    id: &renewed,
                })
                .await?;
            next = follow(&renewed, cookie_name, codec, shared, now).await?;
        }
    }
    store.delete(Delete { cookie_name, id }).await?;
    Ok(())
}

/// Whether a write's outcome needs [`follow_renewal`]: a renewal that was saved (it leaves its
/// forward) or a write whose id was gone (it may have been renewed away).
fn needs_follow_up(op: &WriteOp, outcome: &SaveOutcome) -> bool {
    matches!(
        (op, outcome),
        (WriteOp::Renew(_), SaveOutcome::Saved(_))
            | (
                WriteOp::Update(_) | WriteOp::Renew(_) | WriteOp::Touch(_),
                SaveOutcome::Missing
            )
    )
}

/// Completes a write on a store that can hold renewal forwards: a renewal leaves its forward, and
/// a write that lost a race against another request's renewal is re-applied where that renewal
/// put the session.
async fn follow_renewal(
    write: &Write,
    name: &str,
    outcome: SaveOutcome,
    id: Option<SessionId>,
    now: u64,
    shared: &Shared,
) -> Result<(SaveOutcome, Option<SessionId>), Error> {
    match (&write.op, &outcome, &id) {
        (WriteOp::Renew(old), SaveOutcome::Saved(_), Some(new)) => {
            if leave_forward(write, name, old, new, now, shared).await? {
                return Ok((outcome, id));
            }
            // Another request renewed (or ended) the session first: apply this request's
            // changes (a renewal encodes only those) to the session where that renewal put it.
            redirect(write, name, old, Some(&write.fields), now, shared).await
        }
        // The loaded id was renewed away by a request this one did not wait for (another
        // process, or serialization off): follow the forward instead of losing the write. A
        // renewal that finds its id renewed away already (the store refuses to move it) does
        // the same with its changes. (A regeneration does not: moving a login into a session
        // another request renewed would defeat the fixation defence.)
        (WriteOp::Update(old) | WriteOp::Renew(old), SaveOutcome::Missing, _) => {
            redirect(write, name, old, Some(&write.fields), now, shared).await
        }
        (WriteOp::Touch(old), SaveOutcome::Missing, _) => {
            redirect(write, name, old, None, now, shared).await
        }
        _ => Ok((outcome, id)),
    }
}

/// The id that `id`'s record forwards to, if it is a renewed-away record within its grace period.
async fn follow(
    id: &SessionId,
    cookie_name: &str,
    codec: RecordCodec,
    shared: &Shared,
    now: u64,
) -> Result<Option<SessionId>, Error> {
    let load = Load {
        cookie_name,
        value: id.as_str(),
        now,
        codec,
        // Only the forward is read.
        names: &[],
    };
    let Some(record) = shared.store.load(load).await? else {
        return Ok(None);
    };
    let ids = shared.store.format(cookie_name).ids();
    Ok(record
        .fields
        .iter()
        .find(|(name, _)| name == RENEWED_FIELD)
        .and_then(|(_, bytes)| renewal::decode(codec, id, bytes, ids))
        .filter(|(until, _)| *until > now)
        .map(|(_, new)| new))
}

/// Re-applies a write whose id was renewed away to the id it forwards to: an update with
/// `fields`, or a touch when `None`. `Missing` when there is no forward (the session is gone).
async fn redirect(
    write: &Write,
    cookie_name: &str,
    old: &SessionId,
    fields: Option<&[(&'static str, Vec<u8>)]>,
    now: u64,
    shared: &Shared,
) -> Result<(SaveOutcome, Option<SessionId>), Error> {
    let Some(new) = follow(old, cookie_name, write.codec, shared, now).await? else {
        return Ok((SaveOutcome::Missing, None));
    };
    let save = match fields {
        Some(fields) => write.save_fields(cookie_name, SaveOp::Update { id: &new }, now, fields),
        None => write.save_fields(cookie_name, SaveOp::Touch { id: &new }, now, &[]),
    };
    let outcome = shared.store.save(save).await?;
    Ok((outcome, Some(new)))
}
