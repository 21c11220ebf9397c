//! The admin list as Settings > Admin Users shows it: each admin with
//! their token's state, their sign-in lockouts and whether they have a
//! second factor.

use crate::domain::admins::throttle::Lockout;
use crate::domain::admins::{search, Admin};
use crate::domain::credentials::admin_tokens::{self, TokenStatus};
use crate::domain::principal::Principal;
use crate::domain::{DomainResult, Keyward};

/// One page of the admin list, with each admin's token and lockouts.
pub struct AdminPage {
    pub entries: Vec<AdminEntry>,
    /// How many admins match the query.
    pub total: i64,
    /// The page shown (past the last page shows the last), from 1.
    pub page: i64,
    pub pages: i64,
    /// How long a superseded admin token keeps working.
    pub switch_over: std::time::Duration,
    /// The longest a new admin token may last.
    pub token_lifetime: std::time::Duration,
}

pub struct AdminEntry {
    pub admin: Admin,
    pub token: TokenStatus,
    pub lockouts: Vec<Lockout>,
    /// Signing in asks this admin for a second factor.
    pub second_factor: bool,
}

impl Keyward {
    /// One page of admins whose username contains `query`.
    pub async fn admin_page(
        &self,
        _who: &Principal,
        query: &str,
        page: i64,
        page_size: i64,
    ) -> DomainResult<AdminPage> {
        // Any number may arrive in a URL: past the last page shows the last.
        let mut page = page.clamp(1, i64::MAX / page_size);
        let (mut found, total) = search(&self.db, query, (page - 1) * page_size, page_size).await?;
        let pages = ((total + page_size - 1) / page_size).max(1);
        if page > pages {
            page = pages;
            found = search(&self.db, query, (page - 1) * page_size, page_size).await?.0;
        }
        let mut entries = Vec::with_capacity(found.len());
        for admin in found {
            let token = admin_tokens::status(&self.db, &admin.id).await?;
            let lockouts = self.throttle.lockouts(&self.db, &admin.username).await?;
            let second_factor = crate::domain::admins::second_factor::required(&self.db, &admin.id).await?;
            entries.push(AdminEntry {
                admin,
                token,
                lockouts,
                second_factor,
            });
        }
        Ok(AdminPage {
            entries,
            total,
            page,
            pages,
            switch_over: self.lifetimes.admin_token_grace,
            token_lifetime: self.lifetimes.admin_token_ttl,
        })
    }
}
