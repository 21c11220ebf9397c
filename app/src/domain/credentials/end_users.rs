//! End users: the people an application's SDKs open sessions for.

use crate::domain::storage::db::Db;
use crate::domain::DomainResult;

#[derive(Debug, Clone)]
pub struct EndUser {
    pub id: String,
    pub user_id: String,
    pub display_name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns of an end user, in the order of [`UserRow`].
pub const USER_COLUMNS: &str = "id, user_id, display_name, created_at, updated_at";
pub type UserRow = (String, String, Option<String>, i64, i64);

impl From<UserRow> for EndUser {
    fn from((id, user_id, display_name, created_at, updated_at): UserRow) -> Self {
        EndUser {
            id,
            user_id,
            display_name,
            created_at,
            updated_at,
        }
    }
}

/// The user whose internal id (`_id` in a session answer) is `id`.
pub async fn find_user_by_id(db: &Db, id: &str) -> DomainResult<Option<EndUser>> {
    let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM end_users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.read())
        .await?;
    Ok(row.map(EndUser::from))
}

pub async fn find_user(db: &Db, user_id: &str) -> DomainResult<Option<EndUser>> {
    let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM end_users WHERE user_id = $1"))
        .bind(user_id)
        .fetch_optional(db.read())
        .await?;
    Ok(row.map(EndUser::from))
}
