//! Pairing on the Auth actor's state (PROTOCOL-NODES §5): pending requests from refused
//! connects, silent approval of local devices, and `device.pair.list|approve|reject|remove`.
//! Changes are audited and written off the actor in generation order; the methods answer
//! once the store is on disk.

use ractor::RpcReplyPort;
use serde_json::{json, Value};

use super::devices::DeviceStore;
use super::pairing::{approval_allowed, PendingRequest, Upsert};
use super::{AuthRequest, AuthState, Caller, PairingOp};
use crate::audit::AuditEvent;
use crate::protocol::device::canonical_public_key;
use crate::protocol::errors::{code, ErrorShape};
use crate::session::manager::SessionManagerMsg;
use crate::shared::now_ms;

/// Close code and reason for live connections of a removed device (as the real gateway).
const REMOVED_CLOSE: (u16, &str) = (4001, "device removed");

type Reply = RpcReplyPort<Result<Value, ErrorShape>>;

/// A result, and whether the store changed (then it is written before the answer).
type Outcome = Result<(Value, bool), ErrorShape>;

/// Runs one operation and answers `reply_to`.
pub(super) async fn handle(state: &mut AuthState, op: PairingOp, caller: &Caller, reply_to: Reply) {
    let now = now_ms();
    let res = match op {
        PairingOp::List => Ok((list(state, now), false)),
        PairingOp::Approve { request_id } => approve(state, &request_id, caller, now).await,
        PairingOp::Reject { request_id } => reject(state, &request_id, caller, now).await,
        PairingOp::Remove { device_id } => {
            let res = remove(state, &device_id, caller).await;
            if res.is_ok() {
                close_connections(state, &device_id, caller);
            }
            res
        }
    };
    match res {
        // Answer once the store is on disk, so "approved" means persisted.
        Ok((v, true)) => {
            let write = persist(state);
            tokio::spawn(async move {
                let _ = write.await;
                let _ = reply_to.send(Ok(v));
            });
        }
        Ok((v, false)) => {
            let _ = reply_to.send(Ok(v));
        }
        Err(e) => {
            let _ = reply_to.send(Err(e));
        }
    }
}

fn invalid(message: &str) -> ErrorShape {
    ErrorShape::new(code::INVALID_REQUEST, message)
}

/// `{pending, paired}`: live requests oldest first, devices by approval time.
fn list(state: &mut AuthState, now: i64) -> Value {
    let mut paired: Vec<_> = state.store.devices.values().collect();
    paired.sort_by_key(|d| (d.approved_at_ms, d.device_id.clone()));
    json!({"pending": state.pending.list(now), "paired": paired})
}

/// Approves a pending request `via: owner`; other roles than `operator` need admin.
async fn approve(state: &mut AuthState, request_id: &str, caller: &Caller, now: i64) -> Outcome {
    let role = match state.pending.get(request_id, now) {
        Some(r) => r.role.clone(),
        None => return Err(invalid("unknown requestId")),
    };
    if !approval_allowed(&role, &caller.scopes) {
        return Err(invalid("device pairing approval denied"));
    }
    let Some(pending) = state.pending.take(request_id, now) else {
        return Err(invalid("unknown requestId"));
    };
    let mut device = pending.approve("owner", now);
    if let Some(old) = state.store.devices.get(&device.device_id) {
        device.created_at_ms = old.created_at_ms;
    }
    state
        .store
        .devices
        .insert(device.device_id.clone(), device.clone());
    let ev = AuditEvent::device_approved(
        &device.device_id,
        request_id,
        &device.role,
        &device.remote_ip,
        &caller.conn_id,
    );
    state.args.audit.record(ev).await;
    tracing::info!(device_id = %device.device_id, request_id, role = %device.role, "device pairing approved");
    Ok((json!({"requestId": request_id, "device": device}), true))
}

/// Rejects a pending request; the device may ask again.
async fn reject(state: &mut AuthState, request_id: &str, caller: &Caller, now: i64) -> Outcome {
    let Some(pending) = state.pending.take(request_id, now) else {
        return Err(invalid("unknown requestId"));
    };
    let ev = AuditEvent::device_rejected(&pending.device_id, request_id, &caller.conn_id);
    state.args.audit.record(ev).await;
    tracing::info!(device_id = %pending.device_id, request_id, "device pairing rejected");
    Ok((
        json!({"requestId": request_id, "deviceId": pending.device_id}),
        false,
    ))
}

/// Forgets a paired device; its next connect needs pairing again.
async fn remove(state: &mut AuthState, device_id: &str, caller: &Caller) -> Outcome {
    if state.store.devices.remove(device_id).is_none() {
        return Err(invalid("unknown deviceId"));
    }
    state.pending.remove_device(device_id);
    let ev = AuditEvent::device_removed(device_id, &caller.conn_id);
    state.args.audit.record(ev).await;
    tracing::info!(device_id, "paired device removed");
    Ok((json!({"deviceId": device_id}), true))
}

/// Closes the removed device's live connections 4001 "device removed", except the caller's
/// own (it gets its answer; its next connect needs pairing anyway).
fn close_connections(state: &AuthState, device_id: &str, caller: &Caller) {
    let mut conn_ids = state.args.registry.conns_of_device(device_id);
    conn_ids.retain(|c| *c != caller.conn_id);
    if conn_ids.is_empty() {
        return;
    }
    let (code, reason) = REMOVED_CLOSE;
    state.args.sessions.cast(SessionManagerMsg::Close {
        conn_ids,
        code,
        reason: reason.to_string(),
    });
}

/// Where a device connected from, as stored in pairing records: the attributed client (the
/// address a trusted proxy forwards), else the TCP peer.
fn remote_ip(req: &AuthRequest) -> String {
    req.conn.client.to_string()
}

/// What a connecting device asks to be paired as (`ts` is set by the pending table).
fn ask_of(req: &AuthRequest, device_id: &str) -> PendingRequest {
    let p = &req.params;
    PendingRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        device_id: device_id.to_string(),
        public_key: p
            .device
            .as_ref()
            .and_then(canonical_public_key)
            .unwrap_or_default(),
        display_name: p.client.display_name.clone(),
        platform: p.client.platform.clone(),
        device_family: p.client.device_family.clone(),
        client_id: p.client.id.clone(),
        client_mode: p.client.mode.clone(),
        role: p.role().to_string(),
        roles: vec![p.role().to_string()],
        scopes: p.requested_scopes().to_vec(),
        remote_ip: remote_ip(req),
        silent: false,
        is_repair: false,
        ts: 0,
    }
}

/// Creates or refreshes the pending request of a non-local device; audits
/// `device.pair.requested` only when the request is new. Returns its `requestId`.
pub(super) async fn request_pairing(
    state: &mut AuthState,
    req: &AuthRequest,
    device_id: &str,
) -> String {
    let ask = ask_of(req, device_id);
    let (pending, outcome) = state.pending.upsert(ask, now_ms());
    if outcome == Upsert::Created {
        let ev = AuditEvent::pair_requested(
            device_id,
            &pending.request_id,
            &pending.remote_ip,
            &pending.role,
            &pending.client_id,
            &req.conn.conn_id,
        );
        state.args.audit.record(ev).await;
    }
    pending.request_id
}

/// Records a silently approved local device and persists the store off the actor.
pub(super) fn approve_silently(state: &mut AuthState, req: &AuthRequest, id: &str) {
    if req.params.device.is_none() {
        return;
    }
    let entry = ask_of(req, id).approve("silent", now_ms());
    state.store.devices.insert(id.to_string(), entry);
    state.pending.remove_device(id);
    let ev = AuditEvent::device_approved_silently(id, req.conn.peer);
    state.args.audit.record_detached(ev);
    drop(persist(state));
}

/// Writes a snapshot of the store off the actor, ordered by generation: a snapshot older
/// than one already on disk is skipped. The returned task ends once this snapshot (or a
/// newer one) is on disk, or the write failed (logged).
fn persist(state: &mut AuthState) -> tokio::task::JoinHandle<()> {
    let bytes = state.store.snapshot();
    let path = state.store.path().to_path_buf();
    state.generation += 1;
    let generation = state.generation;
    let written = state.written.clone();
    tokio::spawn(async move {
        let res = tokio::task::spawn_blocking(move || {
            let mut last = crate::shared::lock(&written);
            if *last >= generation {
                return Ok(()); // a newer snapshot is already on disk
            }
            DeviceStore::persist(&path, &bytes)?;
            *last = generation;
            Ok::<(), std::io::Error>(())
        })
        .await;
        if !matches!(res, Ok(Ok(()))) {
            tracing::error!("could not persist the paired device store: {res:?}");
        }
    })
}
