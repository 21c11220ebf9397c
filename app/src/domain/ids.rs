//! Identifiers for rows and sessions.

use rand::RngCore;

/// Ids and nonces are drawn from the thread's CSPRNG (ChaCha, seeded and
/// reseeded from the OS): they must be unique and unguessable, and a
/// session needs two of them, where the OS generator costs a system call
/// each (about 2 % of the server's time in new-user sessions, perf). Keys
/// and stored secrets still come straight from the OS (`secrets`).
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Random bytes after a big-endian millisecond timestamp: unique like a
/// random id, but new ones sort after old ones, so inserting them appends
/// to an index instead of dirtying random pages of it.
pub fn time_ordered<const N: usize>() -> [u8; N] {
    time_ordered_at(crate::domain::clock::now_ms())
}

/// As [`time_ordered`], at the time `ms`: a row made at `ms` carries its
/// own creation time, so the time need not be held twice (known users).
pub fn time_ordered_at<const N: usize>(ms: i64) -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b[6..]);
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b
}

/// A row id Keyward made (32 lowercase hex digits) as its 16 bytes, to
/// hold many in little memory. `None` for any other id (one imported, or
/// hex of another case): kept as text, it still names its row exactly.
pub fn id_bytes(id: &str) -> Option<[u8; 16]> {
    let lower_hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if id.len() != 32 || !id.bytes().all(lower_hex) {
        return None;
    }
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(id, &mut bytes).ok()?;
    Some(bytes)
}

/// An id no row can have (empty, too long, control characters, which
/// PostgreSQL refuses in text) names none: not found, without a lookup.
pub fn plausible(id: &str, entity: crate::domain::Entity) -> crate::domain::DomainResult<()> {
    if id.is_empty() || id.len() > 64 || id.chars().any(char::is_control) {
        return Err(crate::domain::DomainError::NotFound(entity));
    }
    Ok(())
}

/// An id for rows created on the hot path (end users): time-ordered hex.
pub fn ordered_id() -> String {
    hex::encode(time_ordered::<16>())
}

/// An ordered id for a row created at `ms`.
pub fn ordered_id_at(ms: i64) -> String {
    hex::encode(time_ordered_at::<16>(ms))
}
